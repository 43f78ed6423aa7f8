#!/usr/bin/env bash
# End-to-end checks of services and load balancers on the local provider
# (docs/services.md, docs/load-balancing.md), through the CLI, with a real
# HAProxy on 127.0.0.1:
#  - examples/inference with 3 replicas per region (6), run as nobody when
#    the test runs as root, applies: all ready, HAProxy serves from the
#    primary region; the secret is in no file Plinth wrote; the next plan is
#    empty;
#  - a bounded load loop while the primary region's replicas are killed: no
#    request fails, traffic moves to the backup region; refresh sees the dead
#    replicas and apply restarts them;
#  - a new version under the same load: a surge replica per region first,
#    then replicas drained and replaced one at a time, no request fails, the
#    surge stops; a version that never becomes ready is rolled back (by apply,
#    then by the controller) and apply, plan and status say why;
#  - plinth controller: a replica killed -9 under load costs no request and is
#    restarted; an apply while it leads is handed over (a rolling update by
#    the controller, no failed request); a killed HAProxy is started again
#    from its recorded spec; a killed controller's replicas keep
#    serving and the next controller adopts them without a restart;
#  - a real Prometheus scrapes the controller and sees the service metrics;
#  - a command that is not on PATH and a probe port no replica listens on are
#    located plan errors;
#  - destroy stops HAProxy and every replica.
# Every process it started is killed by the trap, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
plinth=$(realpath "${1:-build/plinth}")
tmp=$(mktemp -d)
ex="$tmp/inference"
cleanup() {
  [ -f "$tmp/prometheus.pid" ] && kill -9 "$(cat "$tmp/prometheus.pid")" 2>/dev/null
  [ -f "$tmp/controller.pid" ] && kill -9 "$(cat "$tmp/controller.pid")" 2>/dev/null
  for p in $(pgrep -f "python3 server.py" 2>/dev/null); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "PLINTH_SERVICES_TEST=$tmp" && kill -9 "$p" 2>/dev/null
  done
  for f in "$ex"/.plinth/default/lb/*/instance; do
    [ -f "$f" ] && kill -9 -- "-$(cut -d' ' -f1 "$f")" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "services-test: $*" >&2; exit 1; }
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || fail "haproxy is not installed (scripts/deps.sh installs it)"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
cp -r examples/inference "$ex"
rm -rf "$ex/.plinth"
# Mark this test's replicas (the trap finds them by it) and use a free port.
sed -i "s|    WARMUP_SECONDS = \"1\"|    WARMUP_SECONDS = \"1\"\n    PLINTH_SERVICES_TEST = \"$tmp\"|" "$ex/main.plinth"
# Three replicas per region: a 6-replica service.
sed -i "s|  replicas = 2|  replicas = 3|" "$ex/main.plinth"
# As root, the replicas run unprivileged (user = "nobody"); the copy must be readable by it.
run_as=""
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  run_as=nobody
  chmod 755 "$tmp"
  sed -i "s|  port     = 20100|  port     = 20100\n  user     = \"nobody\"|" "$ex/main.plinth"
fi
secret="tok-$RANDOM-$RANDOM-secret"
export PLINTH_VAR_model_token="$secret" PLINTH_VAR_lb_port="$port"
"$plinth" apply --auto-approve "$ex" >"$tmp/apply.txt" 2>&1 || fail "apply of the example failed: $(cat "$tmp/apply.txt")"
url="http://127.0.0.1:$port"
region_of() { curl -s -m 2 -d x "$url/predict" | python3 -c 'import json,sys; print(json.load(sys.stdin)["region"])'; }
[ "$(region_of)" = eu ] || fail "the primary region does not serve: $(curl -s -m 2 "$url/predict")"
curl -s -m 2 "$url/predict" | grep -q '"authorized": true' || fail "the replicas did not get their secret"
if [ -n "$run_as" ]; then
  for p in $(pgrep -f "python3 server.py"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "PLINTH_SERVICES_TEST=$tmp" || continue
    uid=$(awk '/^Uid:/ {print $2}' "/proc/$p/status")
    [ "$uid" = "$(id -u nobody)" ] || fail "replica pid $p runs as uid $uid, not as nobody"
  done
fi
if grep -rqF -- "$secret" "$ex/.plinth" "$tmp/apply.txt"; then
  fail "the secret is in a file: $(grep -rlF -- "$secret" "$ex/.plinth" "$tmp/apply.txt")"
fi
"$plinth" plan --detailed-exitcode "$ex" >"$tmp/plan.txt" 2>&1 || fail "the plan after apply is not empty: $(cat "$tmp/plan.txt")"

# load N: N sequential requests through the load balancer; prints how many failed.
load() {
  local n=$1 failed=0 i code
  for i in $(seq 1 "$n"); do
    code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -d x "$url/predict" || true)
    [ "$code" = 200 ] || failed=$((failed + 1))
  done
  echo "$failed"
}
kill_region() {
  local p
  for p in $(pgrep -f "python3 server.py"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "PLINTH_REGION=$1" &&
      tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "PLINTH_SERVICES_TEST=$tmp" && kill -9 "$p"
  done
  return 0
}

# Region loss under load: kill the primary's replicas while requests flow.
load 400 >"$tmp/failed-1" &
load_pid=$!
sleep 0.5
kill_region eu
wait "$load_pid"
[ "$(cat "$tmp/failed-1")" = 0 ] || fail "$(cat "$tmp/failed-1") of 400 requests failed when the primary region was lost"
[ "$(region_of)" = us ] || fail "traffic did not move to the backup region"
"$plinth" plan "$ex" >"$tmp/plan2.txt" 2>&1
grep -q "replicas_running = 3 -> 6" "$tmp/plan2.txt" || fail "refresh did not see the dead replicas: $(cat "$tmp/plan2.txt")"
"$plinth" apply --auto-approve "$ex" >"$tmp/apply2.txt" 2>&1 || fail "the apply restarting the replicas failed: $(cat "$tmp/apply2.txt")"
for _ in $(seq 1 40); do [ "$(region_of)" = eu ] && break; sleep 0.25; done
[ "$(region_of)" = eu ] || fail "the primary region does not serve again after apply"

# A new version under load: one replica at a time, no failed request.
sed -i 's/version  = "model-v1"/version  = "model-v2"/' "$ex/main.plinth"
load 300 >"$tmp/failed-2" &
load_pid=$!
"$plinth" apply --auto-approve "$ex" >"$tmp/apply3.txt" 2>&1 || fail "the rolling update failed: $(cat "$tmp/apply3.txt")"
wait "$load_pid"
[ "$(cat "$tmp/failed-2")" = 0 ] || fail "$(cat "$tmp/failed-2") of 300 requests failed during the rolling update"
grep -q "service.model: updated" "$tmp/apply3.txt" || fail "the service was not updated: $(cat "$tmp/apply3.txt")"
# rollout { max_unavailable = 0, max_surge = 1 }: an extra replica per region ran, and is gone.
for r in eu us; do
  [ -s "$ex/.plinth/default/services/logs/model.$r.3.log" ] || fail "no surge replica ran in $r"
done
running=0
for p in $(pgrep -f "python3 server.py"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "PLINTH_SERVICES_TEST=$tmp" && running=$((running + 1))
done
[ "$running" = 6 ] || fail "$running replicas run after the rollout, not 6 (the surge did not stop)"

# bad_version FILE VERSION: the configuration with a version that never becomes
# ready (READY_FILE points nowhere) and a 6 s ready_timeout.
bad_version() {
  sed -e "s/version  = \"model-v[0-9]\"/version  = \"$2\"/" \
    -e 's|    WARMUP_SECONDS = "1"|    WARMUP_SECONDS = "1"\n    READY_FILE = "/nonexistent/ready"|' \
    -e 's|  port     = 20100|  port     = 20100\n  ready_timeout = 6s|' "$1"
}
# versions_running: the sorted versions of this test's replicas, one per line.
versions_running() {
  local p
  for p in $(pgrep -f "python3 server.py"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "PLINTH_SERVICES_TEST=$tmp" &&
      tr '\0' '\n' <"/proc/$p/environ" | sed -n 's/^PLINTH_SERVICE_VERSION=//p'
  done | sort
}
# A version that never becomes ready is rolled back by apply: no request fails,
# apply and plan say why, the previous version keeps serving.
cp "$ex/main.plinth" "$tmp/main.good"
bad_version "$tmp/main.good" model-bad >"$ex/main.plinth"
load 150 >"$tmp/failed-rb" &
load_pid=$!
set +e
"$plinth" apply --auto-approve "$ex" >"$tmp/apply-bad.txt" 2>&1
rc=$?
set -e
wait "$load_pid"
[ "$rc" = 1 ] || fail "the apply of a version that never becomes ready exited $rc: $(cat "$tmp/apply-bad.txt")"
grep -q 'the rollout of version "model-bad" failed and was rolled back to the last version that ran' "$tmp/apply-bad.txt" ||
  fail "apply does not say the rollout was rolled back: $(cat "$tmp/apply-bad.txt")"
[ "$(cat "$tmp/failed-rb")" = 0 ] || fail "$(cat "$tmp/failed-rb") of 150 requests failed while a bad version was rolled back"
[ "$(versions_running | uniq -c | tr -s ' ')" = " 6 model-v2" ] || fail "not 6 replicas of model-v2 after the rollback: $(versions_running)"
"$plinth" plan "$ex" >"$tmp/plan-bad.txt" 2>&1 || true
grep -q 'note: service.model: the rollout of version "model-bad" (generation [0-9]*) failed at .* and was rolled back' "$tmp/plan-bad.txt" ||
  fail "the plan does not say why the change was rolled back: $(cat "$tmp/plan-bad.txt")"
cp "$tmp/main.good" "$ex/main.plinth"
"$plinth" plan --detailed-exitcode "$ex" >"$tmp/plan-good.txt" 2>&1 || fail "the plan after the rollback is not empty: $(cat "$tmp/plan-good.txt")"
echo "services-test: a version that never became ready was rolled back by apply (0 of 150 requests failed)"

# The controller keeps the replicas running between applies.
ctl_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
"$plinth" controller "$ex" --interval=1s --lease-ttl=4s --listen="127.0.0.1:$ctl_port" >"$tmp/controller.log" 2>&1 &
ctl_pid=$!
echo "$ctl_pid" >"$tmp/controller.pid"
all_ready() {
  local out
  out=$("$plinth" status "$ex" 2>/dev/null || true)
  grep -q "service model: 6 of 6 replicas ready$" <<<"$out"
}
wait_ready() {
  local t0=$SECONDS
  until all_ready; do
    [ $((SECONDS - t0)) -lt "$1" ] || return 1
    sleep 0.2
  done
}
wait_ready 20 || fail "the controller does not report the service ready: $("$plinth" status "$ex" 2>&1)"
pids_before=$(pgrep -f "python3 server.py" | sort | tr '\n' ' ')
# A real Prometheus scrapes the controller and sees the service metrics.
command -v prometheus >/dev/null || fail "prometheus is not installed (scripts/deps.sh installs it)"
{
  prom_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: plinth-controller
    static_configs:
      - targets: ["127.0.0.1:$ctl_port"]
YAML
  prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom-data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
  echo $! >"$tmp/prometheus.pid"
  seen=""
  for _ in $(seq 1 60); do
    seen=$(curl -s -m 2 "http://127.0.0.1:$prom_port/api/v1/query?query=plinth_service_replicas_ready" |
      python3 -c 'import json,sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    print("")' || true)
    [ "$seen" = 6 ] && break
    sleep 0.5
  done
  [ "$seen" = 6 ] || fail "Prometheus did not see plinth_service_replicas_ready = 6 (got '$seen'): $(tail -5 "$tmp/prometheus.log")"
  kill "$(cat "$tmp/prometheus.pid")" 2>/dev/null || true
  wait "$(cat "$tmp/prometheus.pid")" 2>/dev/null || true
  rm -f "$tmp/prometheus.pid"
  echo "services-test: Prometheus scraped the controller: plinth_service_replicas_ready{service=\"model\"} = 6"
}
# replica_in REGION: the pid of one of this test's replicas in REGION, or nothing.
replica_in() {
  local p env_of
  for p in $(pgrep -f "python3 server.py"); do
    env_of=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null || true)
    if grep -qx "PLINTH_SERVICES_TEST=$tmp" <<<"$env_of" && grep -qx "PLINTH_REGION=$1" <<<"$env_of"; then
      echo "$p"
      return 0
    fi
  done
}
# Self-healing under load: kill -9 one replica; no request fails; the
# controller restarts it (after the 10 s back-off).
load 300 >"$tmp/failed-3" &
load_pid=$!
sleep 0.3
victim=$(replica_in eu)
[ -n "$victim" ] || fail "no replica of region eu found to kill"
kill -9 "$victim"
t_kill=$SECONDS
wait "$load_pid"
[ "$(cat "$tmp/failed-3")" = 0 ] || fail "$(cat "$tmp/failed-3") of 300 requests failed when a replica was killed"
sleep 1
wait_ready 30 || fail "the controller did not restart the killed replica: $("$plinth" status "$ex" 2>&1)"
echo "services-test: a killed replica was back after $((SECONDS - t_kill)) s (back-off 10 s)"
status_text=$("$plinth" status "$ex")
grep -q "1 restarts" <<<"$status_text" || fail "the restart is not in the status: $status_text"
# The same drill under wrk (8 connections for 8 s through HAProxy): failed
# requests (non-2xx and socket errors) and the time until 6 of 6 are ready.
command -v wrk >/dev/null || fail "wrk is not installed (scripts/deps.sh installs it)"
wrk -t2 -c8 -d8s "$url/predict" >"$tmp/wrk.txt" 2>&1 &
wrk_pid=$!
sleep 2
victim=$(replica_in eu)
[ -n "$victim" ] || fail "no replica of region eu found to kill under wrk"
kill -9 "$victim"
t_kill=$SECONDS
# The controller sees the replica gone (its next pass), then has it back.
for _ in $(seq 1 50); do all_ready || break; sleep 0.2; done
wait_ready 40 || fail "the controller did not restart the replica killed under wrk: $("$plinth" status "$ex" 2>&1)"
full=$((SECONDS - t_kill))
wait "$wrk_pid" || fail "wrk failed: $(cat "$tmp/wrk.txt")"
read -r total failed < <(python3 - "$tmp/wrk.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
total = int(re.search(r"(\d+) requests in", t).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
failed = (int(non2xx.group(1)) if non2xx else 0) + (sum(int(x) for x in sock.groups()) if sock else 0)
print(total, failed)
PY
)
[ "$total" -gt 0 ] || fail "wrk sent no request: $(cat "$tmp/wrk.txt")"
[ $((failed * 1000)) -le "$total" ] || fail "$failed of $total requests failed under wrk when a replica was killed (more than 0.1%)"
echo "services-test: wrk: a replica killed -9 under load: $failed of $total requests failed; full strength again after ${full} s"
# An apply while the controller leads hands the change over and waits for it.
sed -i 's/version  = "model-v2"/version  = "model-v3"/' "$ex/main.plinth"
load 200 >"$tmp/failed-4" &
load_pid=$!
"$plinth" apply --auto-approve "$ex" >"$tmp/apply4.txt" 2>&1 || fail "apply under the controller failed: $(cat "$tmp/apply4.txt")"
wait "$load_pid"
[ "$(cat "$tmp/failed-4")" = 0 ] || fail "$(cat "$tmp/failed-4") of 200 requests failed in a rolling update by the controller"
"$plinth" status --json "$ex" | python3 -c '
import json, sys
d = json.load(sys.stdin)
s = [s for s in d["services"] if s["id"] == "model"][0]
assert s["converged"], s
' || fail "the controller did not converge the new version: $("$plinth" status "$ex")"
# Under the controller too: a bad version is rolled back by the controller; the
# waiting apply fails with its reason and plinth status shows it.
cp "$ex/main.plinth" "$tmp/main.good"
bad_version "$tmp/main.good" model-bad2 >"$ex/main.plinth"
set +e
"$plinth" apply --auto-approve "$ex" >"$tmp/apply-bad2.txt" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "apply of a bad version under the controller exited $rc: $(cat "$tmp/apply-bad2.txt")"
grep -q 'the rollout of version "model-bad2" failed and was rolled back' "$tmp/apply-bad2.txt" ||
  fail "apply under the controller does not say the rollout was rolled back: $(cat "$tmp/apply-bad2.txt")"
status_text=$("$plinth" status "$ex")
grep -q 'rolled back: generation [0-9]* (version "model-bad2") failed: replica model\..* was not ready 6s after it started' <<<"$status_text" ||
  fail "plinth status does not show the rollback: $status_text"
cp "$tmp/main.good" "$ex/main.plinth"
wait_ready 30 || fail "the controller did not converge after the rollback: $("$plinth" status "$ex" 2>&1)"
[ "$(versions_running | uniq -c | tr -s ' ')" = " 6 model-v3" ] || fail "not 6 replicas of model-v3 after the controller's rollback: $(versions_running)"
echo "services-test: the controller rolled a bad version back"
# HAProxy killed: the controller starts it again from its recorded spec.
lb_pid=$(cut -d' ' -f1 "$ex/.plinth/default/lb/front/instance")
kill -9 -- "-$lb_pid"
t_lb=$SECONDS
lb_back=""
for _ in $(seq 1 50); do
  st=$("$plinth" status "$ex" 2>/dev/null || true)
  if grep -q "load balancer front: running, pid [0-9]*, 1 restarts" <<<"$st" && [ "$(region_of 2>/dev/null)" = eu ]; then
    lb_back=1
    break
  fi
  sleep 0.2
done
[ -n "$lb_back" ] || fail "the controller did not start the killed HAProxy again: $("$plinth" status "$ex" 2>&1)"
[ "$(cut -d' ' -f1 "$ex/.plinth/default/lb/front/instance")" != "$lb_pid" ] || fail "HAProxy has its old pid"
echo "services-test: a killed HAProxy served again after $((SECONDS - t_lb)) s"
[ "$(load 20)" = 0 ] || fail "requests failed after HAProxy was started again"
# The controller killed: the replicas keep serving; a new controller adopts them (no restart).
pids_mid=$(pgrep -f "python3 server.py" | sort | tr '\n' ' ')
kill -9 "$ctl_pid"
wait "$ctl_pid" 2>/dev/null || true
[ "$(load 20)" = 0 ] || fail "requests failed while no controller ran"
"$plinth" controller "$ex" --interval=1s --lease-ttl=4s >"$tmp/controller2.log" 2>&1 &
ctl_pid=$!
echo "$ctl_pid" >"$tmp/controller.pid"
sleep 6  # the dead controller's lease (4 s) expires, the new one leads
wait_ready 20 || fail "the new controller does not report the service ready: $("$plinth" status "$ex" 2>&1)"
[ "$(pgrep -f "python3 server.py" | sort | tr '\n' ' ')" = "$pids_mid" ] ||
  fail "the new controller restarted replicas instead of adopting them"
kill -TERM "$ctl_pid"
wait "$ctl_pid" || fail "the controller did not exit 0 on SIGTERM: $(tail -5 "$tmp/controller2.log")"
rm -f "$tmp/controller.pid"
[ -n "$pids_before" ]

# Bad input: located plan errors, nothing applied.
bad="$tmp/bad"
mkdir -p "$bad"
sed -e 's/command  = \["python3", "server.py"\]/command  = ["no-such-model-server"]/' "$ex/main.plinth" >"$bad/main.plinth"
set +e
"$plinth" plan "$bad" >"$tmp/bad.txt" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "a command that is not on PATH planned (exit $rc)"
grep -Eq "main.plinth:[0-9]+:1: service.model: command's program 'no-such-model-server' is not on PATH" "$tmp/bad.txt" ||
  fail "the error is not located: $(cat "$tmp/bad.txt")"
sed -e 's|    http   = "/ready"|    http   = "/ready"\n    port   = 9999|' "$ex/main.plinth" >"$bad/main.plinth"
set +e
"$plinth" plan "$bad" >"$tmp/bad2.txt" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "a probe on a port no replica listens on planned (exit $rc)"
grep -q "readiness probe port 9999 is not a port the replicas listen on (20100-20102)" "$tmp/bad2.txt" ||
  fail "the probe error is missing: $(cat "$tmp/bad2.txt")"

# destroy: HAProxy and every replica go.
"$plinth" destroy --auto-approve "$ex" >"$tmp/destroy.txt" 2>&1 || fail "destroy failed: $(cat "$tmp/destroy.txt")"
for p in $(pgrep -f "python3 server.py"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "PLINTH_SERVICES_TEST=$tmp" && fail "a replica outlived destroy"
done
if curl -s -m 1 "$url/predict" >/dev/null 2>&1; then fail "the load balancer still answers after destroy"; fi
echo "services-test: all passed"
