#!/usr/bin/env bash
# Crash-injection harness: kills `plinth apply` and `plinth destroy` with
# SIGKILL at random moments, and (through build/plinth-fault, the engine
# with a fault-injecting provider) exactly before or after the provider
# call number N, N random; then checks that the next run converges with
# no orphaned and no phantom resources:
#   after a killed apply:   apply again -> plan is empty -> exactly the
#                           configured marker files exist
#   after a killed destroy: destroy again -> no marker file is left
# Usage: scripts/crash-test.sh [PLINTH] [TRIALS]   (defaults: build/plinth, 50)
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

# A chain and a fan-out of markers, so kills land between dependent steps.
{
  echo 'region "eu" {}'
  echo 'marker "root" {'
  echo '  path = "m/root"'
  echo '}'
  echo "marker \"chain\" {"
  echo "  count   = $markers"
  echo '  path    = "m/chain-${count.index}"'
  echo '  content = marker.root.path'
  echo '}'
} >"$tmp/main.plinth"
expected=$((markers + 1))
data="$tmp/.plinth/default/data"
count_files() { find "$data/m" -type f 2>/dev/null | wc -l; }

# A random delay in milliseconds in [0, $1).
rand_ms() { echo $((RANDOM % $1)); }

run_and_kill() {  # command, max delay ms
  "$plinth" "$1" --auto-approve --parallelism=4 "$tmp" >/dev/null 2>&1 &
  local pid=$!
  sleep "$(awk -v ms="$(rand_ms "$2")" 'BEGIN { printf "%.3f", ms / 1000 }')"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# The engine with a SIGKILL at mutating provider call N (1-based), just
# before the call or just after it changed the world.
fault_kill() {  # apply|destroy
  local when=before
  [ $((RANDOM % 2)) = 0 ] && when=after
  local n=$(( RANDOM % expected + 1 ))
  local rc
  rc=$( ( "$faulty" "kill-$when@$n" "$1" "$tmp" 4 >/dev/null 2>&1; echo $? ) 2>/dev/null )
  [ "$rc" = 137 ] || fail "plinth-fault kill-$when@$n $1 was not killed (exit $rc)"
  exact_kills=$((exact_kills + 1))
}

killed_mid_run=0
exact_kills=0
for trial in $(seq 1 "$trials"); do
  # Measure a full run once to aim the kills inside it.
  if [ "$trial" = 1 ]; then
    start=$(date +%s%N)
    "$plinth" apply --auto-approve --parallelism=4 "$tmp" >/dev/null 2>&1 || fail "first apply failed"
    span=$(( ($(date +%s%N) - start) / 1000000 + 1 ))
    "$plinth" destroy --auto-approve "$tmp" >/dev/null 2>&1 || fail "first destroy failed"
    echo "crash-test: a full apply of $expected markers takes ${span} ms; killing at random points within it"
  fi
  if [ $((trial % 2)) = 1 ]; then
    if [ $((trial % 4)) = 1 ]; then
      run_and_kill apply "$span"
    else
      fault_kill apply
    fi
    [ "$(count_files)" -lt "$expected" ] && killed_mid_run=$((killed_mid_run + 1))
    out=$("$plinth" apply --auto-approve "$tmp" 2>&1) || fail "apply after the kill failed: $out"
    set +e
    "$plinth" plan --detailed-exitcode "$tmp" >"$tmp/plan.txt" 2>&1
    rc=$?
    set -e
    [ "$rc" = 0 ] || fail "the plan after convergence is not empty (exit $rc): $(cat "$tmp/plan.txt")"
    [ "$(count_files)" = "$expected" ] || fail "$(count_files) marker files exist, $expected expected"
  else
    if [ $((trial % 4)) = 2 ]; then
      run_and_kill destroy "$span"
    else
      fault_kill destroy
    fi
    out=$("$plinth" destroy --auto-approve "$tmp" 2>&1) || fail "destroy after the kill failed: $out"
    [ "$(count_files)" = 0 ] || fail "$(count_files) marker files left after destroy: orphans"
    # Back to a full state for the next apply trial.
    "$plinth" apply --auto-approve "$tmp" >/dev/null 2>&1 || fail "re-apply failed"
    [ "$(count_files)" = "$expected" ] || fail "re-apply left $(count_files) files"
    "$plinth" destroy --auto-approve "$tmp" >/dev/null 2>&1 || fail "re-destroy failed"
  fi
done
echo "crash-test: $trials trials, $killed_mid_run apply kills landed mid-run, $exact_kills kills at an exact provider call; no orphans, no mismatches"
