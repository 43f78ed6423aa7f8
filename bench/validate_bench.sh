#!/usr/bin/env bash
# Benchmarks `plinth validate` on generated configurations.
#
#   bench/validate_bench.sh [BUILD_DIR]      (default: build)
#
# Builds nothing: BUILD_DIR must hold `plinth` and `plinth-bench-gen` (a
# Release build: cmake -DCMAKE_BUILD_TYPE=Release && make plinth plinth-bench-gen).
# For each size in BENCH_SIZES (default "1000 10000 100000") it generates a
# configuration into bench/out/N (gitignored), runs `plinth validate --json`
# BENCH_RUNS times (default 3) under /usr/bin/time, checks that every run exits
# 0 with no errors or warnings and reports exactly N resource instances, and
# prints the medians as a markdown table. The largest size is also run once
# with --threads=1 to show what parsing files in parallel buys.
# Environment: BENCH_SIZES, BENCH_RUNS, BENCH_SEED (default 1).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
SIZES="${BENCH_SIZES:-1000 10000 100000}"
RUNS="${BENCH_RUNS:-3}"
SEED="${BENCH_SEED:-1}"
OUT="$ROOT/bench/out"

PLINTH="$BUILD/plinth"
GEN="$BUILD/plinth-bench-gen"
for bin in "$PLINTH" "$GEN"; do
  if [[ ! -x "$bin" ]]; then
    echo "validate_bench: $bin not found; build it first:" >&2
    echo "  cmake -S $ROOT -B $BUILD -DCMAKE_BUILD_TYPE=Release && make -C $BUILD plinth plinth-bench-gen" >&2
    exit 2
  fi
done
if [[ ! -x /usr/bin/time ]]; then
  echo "validate_bench: /usr/bin/time (GNU time) is missing; install it with: sudo apt-get install time" >&2
  exit 2
fi

mkdir -p "$OUT"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# run_once DIR N [extra args...] -> prints "wall_s rss_kb cpu_s"; fails loudly on a bad result.
run_once() {
  local dir="$1" n="$2"
  shift 2
  local rc=0
  /usr/bin/time -f "%e %M %U %S" -o "$TMP/time" "$PLINTH" validate --json "$@" "$dir" >"$TMP/json" 2>"$TMP/err" || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "validate_bench: plinth validate $* $dir exited $rc" >&2
    head -c 4000 "$TMP/err" "$TMP/json" >&2
    exit 1
  fi
  local got errors warnings
  got="$(grep -o '"resource_instances": *[0-9]*' "$TMP/json" | grep -o '[0-9]*$' || true)"
  errors="$(grep -o '"error_count": *[0-9]*' "$TMP/json" | grep -o '[0-9]*$' || true)"
  warnings="$(grep -o '"warning_count": *[0-9]*' "$TMP/json" | grep -o '[0-9]*$' || true)"
  if [[ "$got" != "$n" || "$errors" != "0" || "$warnings" != "0" ]]; then
    echo "validate_bench: $dir: expected $n resource instances, 0 errors, 0 warnings;" \
      "got ${got:-?} instances, ${errors:-?} errors, ${warnings:-?} warnings" >&2
    exit 1
  fi
  # The last line of the -o file is the format (earlier lines: "Command exited ..." notes).
  tail -n 1 "$TMP/time" | awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }'
}

echo "# plinth validate benchmark"
echo
echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "- load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- binary: $PLINTH; $RUNS runs per size, medians; seed $SEED"
echo

declare -A WALL
ROWS=()
for n in $SIZES; do
  dir="$OUT/$n"
  gen_log="$("$GEN" --resources="$n" --out="$dir" --seed="$SEED")"
  files=$(find "$dir" -name '*.plinth' | wc -l)
  bytes=$(find "$dir" -name '*.plinth' -printf '%s\n' | awk '{ s += $1 } END { print s }')
  : >"$TMP/walls"; : >"$TMP/rss"; : >"$TMP/cpu"
  for ((r = 1; r <= RUNS; r++)); do
    read -r wall rss cpu < <(run_once "$dir" "$n")
    echo "$wall" >>"$TMP/walls"; echo "$rss" >>"$TMP/rss"; echo "$cpu" >>"$TMP/cpu"
  done
  w=$(median <"$TMP/walls"); m=$(median <"$TMP/rss"); c=$(median <"$TMP/cpu")
  WALL[$n]=$w
  ROWS+=("$(printf '| %s | %s | %.1f | %s | %s | %.0f |' "$n" "$files" "$(echo "$bytes" | awk '{ print $1 / 1048576 }')" \
    "$w" "$c" "$(echo "$m" | awk '{ print $1 / 1024 }')")")
  echo "$gen_log" >"$TMP/gen_$n"
done

echo "| resources | files | MiB of source | wall (s) | CPU user+sys (s) | peak RSS (MiB) |"
echo "|---:|---:|---:|---:|---:|---:|"
for row in "${ROWS[@]}"; do echo "$row"; done

largest="${SIZES##* }"
read -r wall1 rss1 cpu1 < <(run_once "$OUT/$largest" "$largest" --threads=1)
echo
echo "--threads=1 at $largest (one run): wall ${wall1} s, CPU ${cpu1} s, peak RSS $((rss1 / 1024)) MiB;" \
  "default threads ($(nproc)): wall ${WALL[$largest]} s (median) -> parallel-parse speedup" \
  "$(awk -v a="$wall1" -v b="${WALL[$largest]}" 'BEGIN { printf "%.2fx", a / b }')"
echo
echo "Breakdown of the largest configuration:"
echo '```'
cat "$TMP/gen_$largest"
echo '```'
