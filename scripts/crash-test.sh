#!/usr/bin/env bash
# Crash-injection harness: kills `plinth apply` and `plinth destroy` with
# SIGKILL at random moments, interrupts them as a terminal's Ctrl-C does
# (SIGINT to plinth's whole process group; once, or twice), and (through
# build/plinth-fault, the engine with a fault-injecting provider) kills
# them exactly before or after the provider call number N, N random; then
# checks that the next run converges with no orphaned and no phantom
# resources:
#   after a killed apply:   apply again -> plan is empty -> exactly the
#                           configured files exist
#   after a killed destroy: destroy again -> no file is left
# The configuration holds markers (local provider, in-process) and text
# files of the example out-of-process provider (a Python child process,
# made slow while interrupted so a call is in flight when SIGINT lands):
# one Ctrl-C must let every running change finish — the child must not
# see the terminal's signal — so an interrupted run shows no failed change.
# Usage: scripts/crash-test.sh [PLINTH] [TRIALS]   (defaults: build/plinth, 50)
# CRASH_BACKEND=postgres://... runs the same trials against the PostgreSQL
# state backend (each workspace in its own schema prefix; scripts/postgres-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
plinth=$(realpath "${1:-build/plinth}")
faulty="$(dirname "$plinth")/plinth-fault"
[ -x "$faulty" ] || { echo "crash-test: $faulty is missing (built with the tests)" >&2; exit 1; }
trials=${2:-${CRASH_TRIALS:-50}}
markers=${CRASH_MARKERS:-150}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "crash-test: trial $trial: $*" >&2; exit 1; }

textfiles=${CRASH_TEXTFILES:-6}
python=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null) ||
  { echo "crash-test: python3 is missing (the textfile provider needs it)" >&2; exit 1; }

# Two workspaces. "plain": a chain and a fan-out of markers, so kills land
# between dependent steps (the kill and fault trials). "child": the same
# plus text files managed by a provider in a child process (the Ctrl-C
# trials only, as starting Python costs every run a few hundred ms). Its
# copy of the provider runs the interpreter python3 resolves to, skipping
# version-manager shims.
mkdir -p "$tmp/plain" "$tmp/child"
markers_config() {
  echo 'region "eu" {}'
  echo 'marker "root" {'
  echo '  path = "m/root"'
  echo '}'
  echo "marker \"chain\" {"
  echo "  count   = $markers"
  echo '  path    = "m/chain-${count.index}"'
  echo '  content = marker.root.path'
  echo '}'
}
markers_config >"$tmp/plain/main.plinth"
{
  markers_config
  echo 'provider "textfile" {'
  echo '  source = "./plinth-provider-textfile"'
  echo '  root   = "./out"'
  echo '}'
  echo "textfile_file \"t\" {"
  echo "  count   = $textfiles"
  echo '  path    = "t-${count.index}.txt"'
  echo '  content = marker.root.path'
  echo '}'
} >"$tmp/child/main.plinth"
{ echo "#!$python"; tail -n +2 examples/provider-python/plinth-provider-textfile; } >"$tmp/child/plinth-provider-textfile"
chmod +x "$tmp/child/plinth-provider-textfile"

# The workspace a trial uses, and how many files it configures.
use() {
  dir="$tmp/$1"
  if [ -n "${CRASH_BACKEND:-}" ]; then
    case $CRASH_BACKEND in *\?*) sep='&' ;; *) sep='?' ;; esac
    export PLINTH_BACKEND="${CRASH_BACKEND}${sep}schema=crash_$1"
  fi
  data="$dir/.plinth/default/data"
  if [ "$1" = child ]; then expected=$((markers + 1 + textfiles)); else expected=$((markers + 1)); fi
}
# Marker files and text files. Not the temporary files a write killed
# before its rename leaves (the local provider's `.NAME.RANDOM.tmp`, the
# textfile provider's `.textfile-*`): they are no resource, only litter.
# The local provider removes its own when it next writes or deletes that
# marker, so after convergence none may be left (checked per trial); the
# example provider's are counted apart and reported.
list_files() {
  { find "$data/m" -type f ! -name '.*.tmp' 2>/dev/null; find "$dir/out" -name 't-*.txt' 2>/dev/null; } | sort
}
count_files() { list_files | wc -l; }
marker_litter() { find "$data/m" -type f -name '.*.tmp' 2>/dev/null | wc -l; }
count_litter() {
  { find "$tmp" -path '*/m/*' -type f -name '.*.tmp' 2>/dev/null; find "$tmp" -name '.textfile-*' 2>/dev/null; } | wc -l
}

# A random delay in milliseconds in [0, $1).
rand_ms() { echo $((RANDOM % $1)); }

run_and_kill() {  # command, max delay ms
  "$plinth" "$1" --auto-approve --parallelism=4 "$dir" >/dev/null 2>&1 &
  local pid=$!
  sleep "$(awk -v ms="$(rand_ms "$2")" 'BEGIN { printf "%.3f", ms / 1000 }')"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Ctrl-C as a terminal sends it: SIGINT to plinth's whole process group
# (set -m gives the job a group of its own, led by plinth). Once: running
# changes finish, none fails (a child that saw the signal would fail its
# change). One run in three gets a second Ctrl-C: plinth leaves at once
# and takes its children with it.
run_and_interrupt() {  # command, max delay ms
  local twice=0
  [ $((RANDOM % 3)) = 0 ] && twice=1
  set -m
  TEXTFILE_TEST_SLOW_ON=create,delete TEXTFILE_TEST_SLOW_MS=80 \
    "$plinth" "$1" --auto-approve --parallelism=4 "$dir" >"$tmp/interrupted.txt" 2>&1 &
  local pid=$!
  set +m
  sleep "$(awk -v ms="$(rand_ms "$2")" 'BEGIN { printf "%.3f", ms / 1000 }')"
  kill -INT -- "-$pid" 2>/dev/null || true
  if [ "$twice" = 1 ]; then
    sleep "$(awk -v ms="$(rand_ms 150)" 'BEGIN { printf "%.3f", ms / 1000 }')"
    kill -INT -- "-$pid" 2>/dev/null || true
  fi
  local rc=0
  wait "$pid" 2>/dev/null || rc=$?
  interrupts=$((interrupts + 1))
  if [ "$twice" = 0 ]; then
    # 0: it had finished; 1: stopped; 130: before the handler was installed.
    case $rc in 0 | 1 | 130) ;; *) fail "$1 interrupted once exited $rc: $(cat "$tmp/interrupted.txt")" ;; esac
    if grep -q "failed to \|was killed\|exited with" "$tmp/interrupted.txt"; then
      fail "a change running when Ctrl-C came failed (its child process saw the signal?): $(cat "$tmp/interrupted.txt")"
    fi
    grep -q "Stopping: no new changes start" "$tmp/interrupted.txt" && stopped_runs=$((stopped_runs + 1))
  fi
  return 0
}

# The engine with a SIGKILL at mutating provider call N (1-based), just
# before the call or just after it changed the world.
fault_kill() {  # apply|destroy
  local when=before
  [ $((RANDOM % 2)) = 0 ] && when=after
  local n=$(( RANDOM % expected + 1 ))
  local rc
  rc=$( ( "$faulty" "kill-$when@$n" "$1" "$dir" 4 >/dev/null 2>&1; echo $? ) 2>/dev/null )
  [ "$rc" = 137 ] || fail "plinth-fault kill-$when@$n $1 was not killed (exit $rc)"
  exact_kills=$((exact_kills + 1))
}

killed_mid_run=0
exact_kills=0
interrupts=0
stopped_runs=0
for trial in $(seq 1 "$trials"); do
  # Measure a full run of each workspace once to aim the kills inside it.
  if [ "$trial" = 1 ]; then
    for w in plain child; do
      use "$w"
      start=$(date +%s%N)
      "$plinth" apply --auto-approve --parallelism=4 "$dir" >/dev/null 2>&1 || fail "first apply of $w failed"
      span=$(( ($(date +%s%N) - start) / 1000000 + 1 ))
      "$plinth" destroy --auto-approve "$dir" >/dev/null 2>&1 || fail "first destroy of $w failed"
      eval "span_$w=$span"
      echo "crash-test: a full apply of $expected resources ($w) takes ${span} ms; killing at random points within it"
    done
  fi
  # Trials cycle through: kill, fault and interrupt an apply (odd), and the
  # same for a destroy (even).
  case $((trial % 6)) in
    1 | 2 | 3 | 4) use plain; span=$span_plain ;;
    *) use child; span=$span_child ;;
  esac
  if [ $((trial % 2)) = 1 ]; then
    case $((trial % 6)) in
      1) run_and_kill apply "$span" ;;
      3) fault_kill apply ;;
      *) run_and_interrupt apply "$span" ;;
    esac
    [ "$(count_files)" -lt "$expected" ] && killed_mid_run=$((killed_mid_run + 1))
    out=$("$plinth" apply --auto-approve "$dir" 2>&1) || fail "apply after the kill failed: $out"
    set +e
    "$plinth" plan --detailed-exitcode "$dir" >"$tmp/plan.txt" 2>&1
    rc=$?
    set -e
    [ "$rc" = 0 ] || fail "the plan after convergence is not empty (exit $rc): $(cat "$tmp/plan.txt")"
    [ "$(count_files)" = "$expected" ] ||
      fail "$(count_files) files exist, $expected expected: $(list_files | grep -v '/chain-[0-9]*$' | tr '\n' ' ')"
    [ "$(marker_litter)" = 0 ] || fail "temporary files of killed marker writes were left after convergence"
    # Back to nothing for the next trial (which may use the other workspace).
    "$plinth" destroy --auto-approve "$dir" >/dev/null 2>&1 || fail "destroy after the apply trial failed"
  else
    # A full state to destroy.
    "$plinth" apply --auto-approve "$dir" >/dev/null 2>&1 || fail "apply before the destroy trial failed"
    [ "$(count_files)" = "$expected" ] || fail "the apply before the destroy trial left $(count_files) files"
    case $((trial % 6)) in
      2) run_and_kill destroy "$span" ;;
      4) fault_kill destroy ;;
      *) run_and_interrupt destroy "$span" ;;
    esac
    out=$("$plinth" destroy --auto-approve "$dir" 2>&1) || fail "destroy after the kill failed: $out"
    [ "$(count_files)" = 0 ] || fail "$(count_files) files left after destroy: orphans: $(list_files | tr '\n' ' ')"
    [ "$(marker_litter)" = 0 ] || fail "temporary files of killed marker writes were left after destroy"
  fi
done
litter=$(count_litter)
echo "crash-test: ${CRASH_BACKEND:+(PostgreSQL backend) }$trials trials, $killed_mid_run apply kills landed mid-run, $exact_kills kills at an exact provider call, $interrupts Ctrl-Cs ($stopped_runs stopped a run that then finished its running changes); no orphans, no mismatches; $litter temporary files left by killed writes"
