#!/usr/bin/env bash
# Benchmarks the plan/apply engine on N `marker` resources of the local
# provider (each create writes and fsyncs a file; each change is journaled).
#
#   bench/engine_bench.sh [BUILD_DIR]      (default: build; a Release build)
#
# Two shapes per size:
#   fanout  one root marker and N-2 markers that read it (plus a probe)
#   chains  100 chains of N/100 markers, each reading the one before it,
#           one file per chain
# For each it measures, under /usr/bin/time (wall seconds, peak RSS):
#   apply      create everything (--auto-approve)
#   noop-plan  plan with nothing to do (refresh reads all N)
#   one-change plan after changing one resource (--var probe=changed)
#   destroy    delete everything
# and checks every result: the apply creates exactly N files, the no-op plan
# exits 0 with --detailed-exitcode, the one-change plan reports exactly
# "0 to create, 1 to update", the destroy leaves no file.
# Prints a markdown table. Environment: BENCH_SIZES (default
# "1000 10000 100000"), BENCH_SHAPES (default "fanout chains"),
# BENCH_PARALLELISM (default 10). Generated configurations and state go to
# bench/out/engine-SHAPE-N (gitignored) and are removed after each size.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${1:-build}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
SIZES="${BENCH_SIZES:-1000 10000 100000}"
SHAPES="${BENCH_SHAPES:-fanout chains}"
PAR="${BENCH_PARALLELISM:-10}"
PLINTH="$BUILD/plinth"
[[ -x "$PLINTH" ]] || { echo "engine_bench: $PLINTH not found; build it first (Release)" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "engine_bench: /usr/bin/time (GNU time) is missing: apt-get install time" >&2; exit 2; }

fail() { echo "engine_bench: $*" >&2; exit 1; }

# Writes the configuration of SHAPE with N markers into DIR/main.plinth.
generate() {
  local shape=$1 n=$2 dir=$3
  mkdir -p "$dir"
  {
    echo 'variable "probe" {'
    echo '  type    = string'
    echo '  default = "initial"'
    echo '}'
    echo 'marker "probe" {'
    echo '  path    = "m/probe"'
    echo '  content = var.probe'
    echo '}'
    if [[ $shape == fanout ]]; then
      echo 'marker "root" {'
      echo '  path = "m/root"'
      echo '}'
      echo 'marker "leaf" {'
      echo "  count   = $((n - 2))"
      echo '  path    = "m/leaf/${count.index}"'
      echo '  content = marker.root.path'
      echo '}'
    else
      # One file per chain, as a team would split a large configuration.
      awk -v n=$((n - 1)) -v dir="$dir" 'BEGIN {
        chains = 100; len = int(n / chains); extra = n - chains * len
        for (c = 0; c < chains; c++) {
          l = len + (c < extra ? 1 : 0)
          f = sprintf("%s/chain-%02d.plinth", dir, c)
          for (i = 0; i < l; i++) {
            printf "marker \"c%d_%d\" {\n  path    = \"m/c%d/%d\"\n", c, i, c, i > f
            if (i > 0) printf "  content = marker.c%d_%d.path\n", c, i - 1 > f
            printf "}\n" > f
          }
          close(f)
        }
      }'
    fi
  } >"$dir/main.plinth"
}

files() { find "$1/.plinth/default/data/m" -type f 2>/dev/null | wc -l; }

# Runs a command under /usr/bin/time; sets SECS and MIB; the command's exit
# status goes to RC (the script does not stop on it).
measure() {
  local t
  t=$(mktemp)
  set +e
  /usr/bin/time -f "%e %M" -o "$t" "$@" >"$t.out" 2>"$t.err"
  RC=$?
  set -e
  read -r SECS KB <"$t"
  MIB=$((KB / 1024))
  OUTPUT=$(tail -c 2000 "$t.out")
  ERRORS=$(grep -v ": creat\|: destroy\|: updat" "$t.err" | tail -c 2000 || true)
  rm -f "$t" "$t.out" "$t.err"
}

echo "| shape | N | apply | no-op plan | plan after one change | destroy | peak RSS (apply / plan) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for n in $SIZES; do
  for shape in $SHAPES; do
    dir="$ROOT/bench/out/engine-$shape-$n"
    rm -rf "$dir"
    generate "$shape" "$n" "$dir"

    measure "$PLINTH" apply --auto-approve --parallelism="$PAR" "$dir"
    [[ $RC == 0 ]] || fail "$shape $n: apply failed: $ERRORS"
    [[ $(files "$dir") == "$n" ]] || fail "$shape $n: apply made $(files "$dir") files, want $n"
    apply="$SECS s"; apply_mib=$MIB

    measure "$PLINTH" plan --detailed-exitcode "$dir"
    [[ $RC == 0 ]] || fail "$shape $n: the no-op plan exited $RC: $OUTPUT $ERRORS"
    noop="$SECS s"; plan_mib=$MIB

    measure "$PLINTH" plan --var probe=changed "$dir"
    [[ $RC == 0 ]] || fail "$shape $n: the one-change plan failed: $ERRORS"
    grep -q "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete." <<<"$OUTPUT" ||
      fail "$shape $n: the one-change plan is not one update: $OUTPUT"
    one="$SECS s"

    measure "$PLINTH" destroy --auto-approve --parallelism="$PAR" "$dir"
    [[ $RC == 0 ]] || fail "$shape $n: destroy failed: $ERRORS"
    [[ $(files "$dir") == 0 ]] || fail "$shape $n: destroy left $(files "$dir") files"
    destroy="$SECS s"

    printf "| %s | %'d | %s | %s | %s | %s | %d / %d MiB |\n" "$shape" "$n" "$apply" "$noop" "$one" "$destroy" \
      "$apply_mib" "$plan_mib"
    rm -rf "$dir"
  done
done
