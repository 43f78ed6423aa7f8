#!/usr/bin/env bash
# End-to-end check of rolling patches inside a maintenance window
# (docs/services.md, "Changes inside a maintenance window"), through the CLI,
# with a real HAProxy and the controller, on a 6-replica service (a copy of
# examples/inference: 3 replicas in each of two regions, round robin):
#  - with the window closed, a new version is recorded by apply (the plan
#    says when the window opens), nothing is replaced, the next plan is empty
#    and status says what waits;
#  - the window is moved to open at the next minute: the controller rolls the
#    version out when it opens, under load (a sequential request loop and
#    wrk, bounded), with no failed request;
#  - inside the window, a version whose readiness never passes is rolled back
#    after ready_timeout, still with no failed request; apply says why;
#  - a controller killed -9 in the middle of a rollout: the next one resumes
#    it, keeping the replicas already replaced (same pids), and every replica
#    ends on the new version; no failed request;
#  - destroy stops everything.
# Every process it started is stopped by the trap, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/fixtures/lib.sh
plinth=$(realpath "${1:-build/plinth}")
tmp=$(mktemp -d)
ex="$tmp/ex"
ctl_pid=""
wrk_pid=""
load_pid=""
apply_pid=""
cleanup() {
  set +e
  touch "$tmp/load.stop" 2>/dev/null
  for p in $wrk_pid $load_pid $apply_pid; do kill -9 "$p" 2>/dev/null; done
  [ -n "$ctl_pid" ] && kill -9 "$ctl_pid" 2>/dev/null
  for f in "$ex"/.plinth/default/lb/*/instance; do
    [ -f "$f" ] && kill -9 -- "-$(cut -d' ' -f1 "$f")" 2>/dev/null
  done
  for p in $(pgrep -f "server.py" 2>/dev/null); do
    tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "PLINTH_PATCH_TEST=$tmp" && kill -9 "$p" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "patch-test: $*" >&2
  echo "--- status" >&2
  "$plinth" status "$ex" >&2 2>&1
  echo "--- controller log (tail)" >&2
  tail -20 "$tmp/controller.log" >&2 2>/dev/null
  exit 1
}
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || fail "haproxy is not installed (scripts/deps.sh installs it)"
command -v wrk >/dev/null || fail "wrk is not installed (scripts/deps.sh installs it)"

cp -r examples/inference "$ex"
rm -rf "$ex/.plinth"
cp "$ex/main.plinth" "$tmp/main.plinth.orig"
# configure VERSION WARMUP READY_FILE START: the service at VERSION, its
# replicas warming up for WARMUP seconds and ready only while READY_FILE
# exists, in window "nightly" opening daily at START (UTC) for 30 minutes.
configure() {
  python3 - "$tmp/main.plinth.orig" "$ex/main.plinth" "$tmp" "$@" <<'EOF'
import re, sys
orig, path, mark, version, warmup, ready, start = sys.argv[1:]
s = open(orig).read()
s = s.replace('region "eu" {\n  host = "127.0.1.1"\n}', 'region "eu" {\n  host = "127.0.24.1"\n}')
s = s.replace('region "us" {\n  host = "127.0.2.1"\n}', 'region "us" {\n  host = "127.0.25.1"\n}')
s = s.replace("  replicas = 2\n  port     = 20100\n", "  replicas = 3\n  port     = 20960\n")
s = re.sub(r'  version  = "[^"]*"', '  version  = "%s"' % version, s)
s = re.sub(r'  env = \{\n.*?\n  \}', '  env = {\n    WARMUP_SECONDS = "%s"\n    READY_FILE = "%s"\n'
           '    PLINTH_PATCH_TEST = "%s"\n  }\n  window        = maintenance_window.nightly\n'
           '  ready_timeout = 15s' % (warmup, ready, mark), s, count=1, flags=re.S)
s = s.replace('  mode    = "failover"\n  primary = region.eu\n', '')
s += '\nmaintenance_window "nightly" {\n  start    = "%s"\n  duration = 30m\n  timezone = "UTC"\n}\n' % start
assert "127.0.24.1" in s and "window        = maintenance_window.nightly" in s and "primary" not in s, \
    "the example changed"
open(path, "w").write(s)
EOF
}
# utc_in SECONDS: HH:MM (UTC) of the minute that starts at least SECONDS from now.
utc_in() {
  python3 -c 'import sys, time; t = time.time() + int(sys.argv[1]); t = (int(t) // 60 + 1) * 60
print(time.strftime("%H:%M", time.gmtime(t)), t)' "$1"
}
# versions: "<count of this test's replicas> <their distinct versions>".
versions() {
  local p n=0 v=""
  for p in $(pgrep -f "server.py" 2>/dev/null); do
    env=$(tr '\0' '\n' 2>/dev/null <"/proc/$p/environ") || continue
    grep -qx "PLINTH_PATCH_TEST=$tmp" <<<"$env" || continue
    n=$((n + 1))
    v="$v $(grep '^PLINTH_SERVICE_VERSION=' <<<"$env" | cut -d= -f2)"
  done
  echo "$n $(tr ' ' '\n' <<<"$v" | sed '/^$/d' | sort -u | tr '\n' ' ')"
}
# pids_of VERSION: the pids of this test's replicas (not the rollout's surge
# replicas, indices 3 on, which stop when it ends) running VERSION, sorted.
pids_of() {
  local p
  for p in $(pgrep -f "server.py" 2>/dev/null); do
    env=$(tr '\0' '\n' 2>/dev/null <"/proc/$p/environ") || continue
    grep -qx "PLINTH_PATCH_TEST=$tmp" <<<"$env" && grep -qx "PLINTH_SERVICE_VERSION=$1" <<<"$env" &&
      grep -qx "PLINTH_REPLICA=[012]" <<<"$env" && echo "$p"
  done | sort -n || true  # the loop's status is its last grep's: not a failure
}
converged() {
  "$plinth" status --json "$ex" 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)["services"][0]
sys.exit(0 if s["converged"] and s["ready"] == 6 else 1)'
}
start_controller() {
  "$plinth" controller "$ex" --interval=1s --lease-ttl=4s --listen="127.0.0.1:$ctl_port" >>"$tmp/controller.log" 2>&1 &
  ctl_pid=$!
}

closed=$(utc_in 10800 | cut -d' ' -f1)  # three hours from now
touch "$tmp/ready"
configure model-v1 1 "$tmp/ready" "$closed"
lb_port=$(free_port)
ctl_port=$(free_port)
export PLINTH_VAR_lb_port="$lb_port"
url="http://127.0.0.1:$lb_port"
"$plinth" apply --auto-approve "$ex" >"$tmp/apply1.txt" 2>&1 || fail "apply failed: $(cat "$tmp/apply1.txt")"
start_controller
wait_for converged 30 || fail "the controller does not report 6 ready replicas"
[ "$(versions)" = "6 model-v1 " ] || fail "expected 6 replicas of model-v1: $(versions)"

# 1. Window closed: the new version is recorded, nothing is replaced.
configure model-v2 1 "$tmp/ready" "$closed"
"$plinth" plan "$ex" >"$tmp/plan2.txt" 2>&1 || fail "plan failed: $(cat "$tmp/plan2.txt")"
grep -q 'rolling out version "model-v2" waits for maintenance window nightly: next opens ' "$tmp/plan2.txt" ||
  fail "the plan does not say the version waits for the window: $(cat "$tmp/plan2.txt")"
t0=$SECONDS
"$plinth" apply --auto-approve "$ex" >"$tmp/apply2.txt" 2>&1 || fail "apply failed: $(cat "$tmp/apply2.txt")"
[ $((SECONDS - t0)) -lt 10 ] || fail "apply of a change that waits for its window took $((SECONDS - t0)) s"
"$plinth" plan --detailed-exitcode "$ex" >"$tmp/plan3.txt" 2>&1 ||
  fail "the plan after recording the waiting change is not empty: $(cat "$tmp/plan3.txt")"
sleep 3
[ "$(versions)" = "6 model-v1 " ] || fail "replicas were replaced outside the window: $(versions)"
"$plinth" status "$ex" >"$tmp/status2.txt" 2>&1
grep -q 'waiting: version "model-v2" for maintenance window nightly (next opens ' "$tmp/status2.txt" ||
  fail "status does not say what waits: $(cat "$tmp/status2.txt")"

# 2. The window opens at the next minute (at least 20 s away): the controller
# rolls model-v2 out then, under load.
read -r open_at open_epoch < <(utc_in 20)
configure model-v2 1 "$tmp/ready" "$open_at"
"$plinth" apply --auto-approve "$ex" >"$tmp/apply3.txt" 2>&1 || fail "apply failed: $(cat "$tmp/apply3.txt")"
python3 scripts/load-recorder.py "$url/predict" "$tmp/load.txt" "$tmp/load.stop" &
load_pid=$!
wrk -t2 -c4 -d150s "$url/predict" >"$tmp/wrk.txt" 2>&1 &
wrk_pid=$!
while [ "$(date +%s)" -lt $((open_epoch - 2)) ]; do
  [ "$(versions)" = "6 model-v1 " ] || fail "replicas were replaced before the window opened: $(versions)"
  sleep 1
done
wait_for '[ "$(versions)" = "6 model-v2 " ] && converged' 90 || fail "model-v2 was not rolled out in the window: $(versions)"
echo "patch-test: the window opened at $open_at UTC; 6 replicas ran model-v2 $(($(date +%s) - open_epoch)) s later"
grep -q 'controller: service.model: rollout version "model-v2" (generation [0-9]*) (maintenance window nightly is open; recorded by apply at ' "$tmp/controller.log" ||
  fail "the controller log does not say it rolled the version out in the window: $(cat "$tmp/controller.log")"
"$plinth" plan --detailed-exitcode "$ex" >"$tmp/plan4.txt" 2>&1 || fail "the plan after the rollout is not empty: $(cat "$tmp/plan4.txt")"

# 3. Inside the window, a patch whose readiness never passes is rolled back.
configure model-bad 1 "$tmp/missing" "$open_at"
if "$plinth" apply --auto-approve "$ex" >"$tmp/apply4.txt" 2>&1; then fail "apply of a version that never becomes ready succeeded"; fi
grep -q 'the rollout of version "model-bad" failed and was rolled back' "$tmp/apply4.txt" ||
  fail "apply does not say the bad version was rolled back: $(cat "$tmp/apply4.txt")"
wait_for '[ "$(versions)" = "6 model-v2 " ] && converged' 40 || fail "model-v2 does not serve again after the rollback: $(versions)"
# plinth history: the applies and the controller's two automatic actions, with their reasons.
"$plinth" history --dir="$ex" service.model >"$tmp/history.txt" 2>&1 || fail "plinth history failed: $(cat "$tmp/history.txt")"
grep -q 'auto     service.model: rollout version "model-v2"' "$tmp/history.txt" &&
  grep -q 'because maintenance window nightly is open' "$tmp/history.txt" &&
  grep -q 'auto     service.model: rollback version "model-bad"' "$tmp/history.txt" ||
  fail "plinth history lacks the controller's rollout and rollback: $(cat "$tmp/history.txt")"
"$plinth" history --json --dir="$ex" | python3 -c '
import json, sys
d = json.load(sys.stdin)
kinds = [(e["kind"], e.get("action")) for e in d["entries"]]
assert ("controller", "rollout") in kinds and ("controller", "rollback") in kinds and ("apply", None) in kinds, kinds' ||
  fail "plinth history --json lacks the entries"

# 4. A controller killed -9 half-way through a rollout; the next one resumes it.
configure model-v3 3 "$tmp/ready" "$open_at"
"$plinth" apply --auto-approve "$ex" >"$tmp/apply5.txt" 2>&1 &
apply_pid=$!
wait_for '[ "$(pids_of model-v3 | wc -l)" -ge 2 ]' 60 || fail "the rollout of model-v3 did not start: $(versions)"
kill -9 "$ctl_pid"
wait "$ctl_pid" 2>/dev/null || true
before=$(pids_of model-v3 | tr '\n' ' ')
start_controller
wait_for '[ "$(versions)" = "6 model-v3 " ] && converged' 90 || fail "the rollout of model-v3 did not resume: $(versions)"
for p in $before; do
  kill -0 "$p" 2>/dev/null || fail "replica pid $p, already on model-v3 when the controller was killed, was replaced again"
done
echo "patch-test: rollout resumed after the controller was killed with $(wc -w <<<"$before") of 6 replicas on model-v3; those kept running"
wait "$apply_pid" || fail "apply of model-v3 failed: $(cat "$tmp/apply5.txt")"
apply_pid=""

touch "$tmp/load.stop"
wait "$load_pid" 2>/dev/null || true
load_pid=""
kill -INT "$wrk_pid" 2>/dev/null || true  # wrk prints its summary on SIGINT
wait "$wrk_pid" 2>/dev/null || true
wrk_pid=""
read -r n failed _ _ < <(python3 scripts/load-recorder.py --summary "$tmp/load.txt" 0)
[ "$n" -gt 100 ] || fail "too few requests in the load loop: $n"
[ "$failed" = 0 ] || fail "$failed of $n sequential requests failed during the rollouts: $(grep ' 0 -$' "$tmp/load.txt" | head -5)"
grep -q 'Non-2xx\|Socket errors' "$tmp/wrk.txt" && fail "wrk saw failed requests: $(cat "$tmp/wrk.txt")"
echo "patch-test: 0 of $n sequential requests and none of wrk's $(grep -o '[0-9]* requests in' "$tmp/wrk.txt" | cut -d' ' -f1) failed across the rollouts"

kill "$ctl_pid" 2>/dev/null
wait "$ctl_pid" 2>/dev/null || true
ctl_pid=""
"$plinth" destroy --auto-approve "$ex" >"$tmp/destroy.txt" 2>&1 || fail "destroy failed: $(cat "$tmp/destroy.txt")"
[ "$(versions)" = "0 " ] || fail "replicas left after destroy: $(versions)"
echo "patch-test: passed"
