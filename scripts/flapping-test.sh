#!/usr/bin/env bash
# End-to-end check of flapping replicas (docs/automation.md, "Flapping
# replicas"), through the CLI with the controller: a service in two regions
# (one replica each, flapping { restarts = 2, within = 2m, remedy = "move",
# hold = 20s }) whose replica eu.0 starts crashing:
#  - the controller restarts it with back-off; at the second restart it moves
#    it to region us (us's relocation block: model.us.1 on us's host, with
#    PLINTH_RELOCATED_FROM=eu and PLINTH_MOVED=flapping), and it serves there;
#  - status and plinth history say so, with the reason; the plan is empty
#    (apply never undoes the move);
#  - when its hold ends it goes home (the crash fixed meanwhile): eu.0 serves
#    again, model.us.1 stops, history records the return;
#  - destroy stops everything.
# Every process it started is stopped by the trap, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/fixtures/lib.sh
plinth=$(realpath "${1:-build/plinth}")
tmp=$(mktemp -d)
ex="$tmp/ex"
ctl_pid=""
cleanup() {
  set +e
  [ -n "$ctl_pid" ] && kill -9 "$ctl_pid" 2>/dev/null
  for p in $(pgrep -f "server.py" 2>/dev/null); do
    tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "PLINTH_FLAPPING_TEST=$tmp" && kill -9 "$p" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "flapping-test: $*" >&2
  echo "--- status" >&2
  "$plinth" status "$ex" >&2 2>&1
  echo "--- controller log (tail)" >&2
  tail -20 "$tmp/controller.log" >&2 2>/dev/null
  exit 1
}

mkdir -p "$ex" "$tmp/crash"
cp examples/inference/server.py "$ex/"
cat >"$ex/main.plinth" <<PLINTH
region "eu" {
  host = "127.0.26.1"
}
region "us" {
  host = "127.0.27.1"
}
service "model" {
  regions  = [region.eu, region.us]
  replicas = 1
  port     = 20990
  # A replica crashes at start while the file crash/<region>.<replica> exists.
  command = ["sh", "-c", "if [ -e \"\$CRASH_DIR/\$PLINTH_REGION.\$PLINTH_REPLICA\" ]; then echo crashing; exit 1; fi; exec python3 server.py"]
  env = {
    CRASH_DIR            = "$tmp/crash"
    PLINTH_FLAPPING_TEST = "$tmp"
  }
  flapping {
    restarts = 2
    within   = 2m
    remedy   = "move"
    hold     = 20s
  }
  readiness {
    http   = "/ready"
    period = 1s
  }
}
PLINTH
# replica_pid REGION INDEX: the pid of the process serving model.REGION.INDEX
# (the test's own server.py), empty when none runs; replica_env: its environment.
replica_pid() {
  local p env
  for p in $(pgrep -f "server.py" 2>/dev/null); do
    env=$(tr '\0' '\n' 2>/dev/null <"/proc/$p/environ") || continue
    grep -qx "PLINTH_FLAPPING_TEST=$tmp" <<<"$env" && grep -qx "PLINTH_REGION=$1" <<<"$env" &&
      grep -qx "PLINTH_REPLICA=$2" <<<"$env" && { echo "$p"; return 0; }
  done
  return 0
}
replica_env() {
  local p
  p=$(replica_pid "$1" "$2")
  [ -z "$p" ] || tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" || true
}
ready() { curl -fsS --max-time 2 "http://$1/ready" >/dev/null 2>&1; }

"$plinth" apply --auto-approve "$ex" >"$tmp/apply1.txt" 2>&1 || fail "apply failed: $(cat "$tmp/apply1.txt")"
ctl_port=$(free_port)
"$plinth" controller "$ex" --interval=1s --lease-ttl=4s --listen="127.0.0.1:$ctl_port" >"$tmp/controller.log" 2>&1 &
ctl_pid=$!
wait_for 'ready 127.0.26.1:20990 && ready 127.0.27.1:20990' 30 || fail "the replicas are not ready"

# eu.0 starts crashing: its process is killed and every restart exits at once.
touch "$tmp/crash/eu.0"
t0=$SECONDS
pid=$(replica_pid eu 0)
[ -n "$pid" ] || fail "no process serves model.eu.0"
kill -9 "$pid"
wait_for '[ -n "$(replica_env us 1)" ] && ready 127.0.27.1:20991' 90 ||
  fail "eu.0 was not moved to us after flapping: $(grep -h crashing "$ex"/.plinth/default/services/logs/model.eu.0.log 2>/dev/null | wc -l) crashes"
echo "flapping-test: eu.0 crashed on every restart; $((SECONDS - t0)) s later it served in us as model.us.1"
env=$(replica_env us 1)
grep -qx 'PLINTH_RELOCATED_FROM=eu' <<<"$env" && grep -qx 'PLINTH_MOVED=flapping' <<<"$env" ||
  fail "the moved replica's environment lacks PLINTH_RELOCATED_FROM/PLINTH_MOVED: $env"
[ -z "$(replica_env eu 0)" ] || fail "eu.0 still runs at home while moved"
grep -q 'controller: service.model: move replica model.eu.0 to region us for 20s (restarted 2 times in 2m)' "$tmp/controller.log" ||
  fail "the controller log does not say it moved the replica: $(cat "$tmp/controller.log")"
"$plinth" status "$ex" >"$tmp/status.txt" 2>&1
grep -q 'moved: replica model.eu.0 runs in region us until .* (restarted 2 times in 2m)' "$tmp/status.txt" ||
  fail "status does not show the move: $(cat "$tmp/status.txt")"
"$plinth" history --dir="$ex" service.model >"$tmp/history.txt" 2>&1
grep -q 'auto     service.model: move replica model.eu.0 to region us for 20s' "$tmp/history.txt" &&
  grep -q 'because restarted 2 times in 2m' "$tmp/history.txt" ||
  fail "plinth history lacks the move: $(cat "$tmp/history.txt")"
# apply never undoes the move; the plan is empty.
"$plinth" plan --detailed-exitcode "$ex" >"$tmp/plan.txt" 2>&1 || fail "the plan while moved is not empty: $(cat "$tmp/plan.txt")"
moved_pid=$(replica_pid us 1)

# The crash is fixed; when the hold ends the replica goes home.
rm -f "$tmp/crash/eu.0"
wait_for '[ -n "$(replica_env eu 0)" ] && ready 127.0.26.1:20990 && [ -z "$(replica_env us 1)" ]' 60 ||
  fail "model.eu.0 did not come home after its hold"
echo "flapping-test: the hold ended; model.eu.0 serves at home again and model.us.1 stopped"
[ -z "$moved_pid" ] || wait_for "! kill -0 $moved_pid" 20 || fail "the moved replica (pid $moved_pid) still runs"
"$plinth" history --dir="$ex" service.model >"$tmp/history.txt" 2>&1
grep -q 'auto     service.model: return replica model.eu.0 back to region eu' "$tmp/history.txt" ||
  fail "plinth history lacks the return: $(cat "$tmp/history.txt")"

kill "$ctl_pid" 2>/dev/null
wait "$ctl_pid" 2>/dev/null || true
ctl_pid=""
"$plinth" destroy --auto-approve "$ex" >"$tmp/destroy.txt" 2>&1 || fail "destroy failed: $(cat "$tmp/destroy.txt")"
[ -z "$(replica_env eu 0)$(replica_env us 0)" ] || fail "replicas left after destroy"
echo "flapping-test: passed"
