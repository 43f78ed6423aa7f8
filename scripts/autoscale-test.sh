#!/usr/bin/env bash
# End-to-end check of autoscaled services (docs/automation.md, "Autoscaling
# services"), through the CLI, with a real HAProxy and the controller:
#  - a copy of examples/inference with replicas = 1 and autoscale { min = 1,
#    max = 3, target "requests_per_second" { average = 20 }, scale_down
#    stabilization 8s } behind a failover load balancer (primary eu);
#  - under load (wrk, bounded in time) eu scales up to 3 replicas, every step
#    a decision of the HPA formula recorded in status; us, which takes no
#    traffic, stays at 1;
#  - an apply while eu runs 3 changes nothing and keeps the 3 replicas (apply
#    never undoes the autoscaler); the plan is empty;
#  - when the load stops, eu keeps 3 replicas for the stabilization window
#    (checked half-way) and then goes back to 1;
#  - /metrics has plinth_service_autoscale_replicas;
#  - a scale_rule on eu's p95 latency (region = "eu") scales eu 1 -> 3 under
#    slow requests that the request-rate target alone would leave at 1, and
#    leaves us at 1; plinth history
#    shows the steps with the rule as their reason;
#  - a scale_rule with a value (eu's request rate, average = 5 per replica)
#    as the only signal scales eu 1 -> 3 under load; status shows the value.
# Every process it started is stopped by the trap, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/fixtures/lib.sh
plinth=$(realpath "${1:-build/plinth}")
tmp=$(mktemp -d)
ex="$tmp/ex"
ctl_pid=""
wrk_pid=""
cleanup() {
  set +e
  [ -n "$wrk_pid" ] && kill "$wrk_pid" 2>/dev/null
  [ -n "$ctl_pid" ] && kill -9 "$ctl_pid" 2>/dev/null
  for f in "$ex"/.plinth/default/lb/*/instance; do
    [ -f "$f" ] && kill -9 -- "-$(cut -d' ' -f1 "$f")" 2>/dev/null
  done
  for p in $(pgrep -f "server.py" 2>/dev/null); do
    tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "PLINTH_AUTOSCALE_TEST=$tmp" && kill -9 "$p" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "autoscale-test: $*" >&2
  echo "--- status" >&2
  "$plinth" status "$ex" >&2 2>&1
  exit 1
}
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || fail "haproxy is not installed (scripts/deps.sh installs it)"
command -v wrk >/dev/null || fail "wrk is not installed (scripts/deps.sh installs it)"

cp -r examples/inference "$ex"
rm -rf "$ex/.plinth"
python3 - "$ex/main.plinth" "$tmp" <<'EOF'
import sys
path, mark = sys.argv[1:]
s = open(path).read()
s = s.replace('region "eu" {\n  host = "127.0.1.1"\n}', 'region "eu" {\n  host = "127.0.21.1"\n}')
s = s.replace('region "us" {\n  host = "127.0.2.1"\n}', 'region "us" {\n  host = "127.0.22.1"\n}')
s = s.replace("  replicas = 2\n  port     = 20100\n", """  replicas = 1
  port     = 20800

  autoscale {
    min = 1
    max = 3
    target "requests_per_second" {
      average = 20
    }
    scale_down {
      stabilization = 8s
    }
  }
""")
s = s.replace('    WARMUP_SECONDS = "1"', '    WARMUP_SECONDS = "1"\n    PLINTH_AUTOSCALE_TEST = "%s"\n    SLOW_FILE = "%s/slow"' % (mark, mark))
assert "autoscale {" in s and "127.0.21.1" in s and mark in s, "the example changed"
open(path, "w").write(s)
EOF

lb_port=$(free_port)
export PLINTH_VAR_lb_port="$lb_port"
url="http://127.0.0.1:$lb_port"
"$plinth" apply --auto-approve "$ex" >"$tmp/apply.txt" 2>&1 || fail "apply failed: $(cat "$tmp/apply.txt")"
# Endpoints for every replica a region may run (max 3), so HAProxy lists them all.
grep -q '"eu/2 127.0.21.1:20802"' "$tmp/apply.txt" || fail "the endpoints do not cover autoscale.max: $(cat "$tmp/apply.txt")"
ctl_port=$(free_port)
"$plinth" controller "$ex" --interval=1s --lease-ttl=4s --listen="127.0.0.1:$ctl_port" >"$tmp/controller.log" 2>&1 &
ctl_pid=$!

# count REGION: the autoscaler's count for REGION in the status (or -1).
count() {
  "$plinth" status --json "$ex" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
a = (d["services"][0].get("autoscale") or {}).get(sys.argv[1]) or {}
print(a.get("replicas", -1))' "$1" 2>/dev/null || echo -1
}
# running REGION: the replicas of this test that run in REGION.
running() {
  local p n=0
  for p in $(pgrep -f "server.py" 2>/dev/null); do
    tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "PLINTH_AUTOSCALE_TEST=$tmp" &&
      tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "PLINTH_REGION=$1" && n=$((n + 1))
  done
  echo "$n"
}
wait_for '[ "$(count eu)" = 1 ] && [ "$(count us)" = 1 ]' 20 || fail "the controller does not report the autoscaler"

# Load: wrk through HAProxy (all of it to eu, the primary), at most 40 s.
wrk -t2 -c8 -d40s "$url/predict" >"$tmp/wrk.txt" 2>&1 &
wrk_pid=$!
t0=$SECONDS
wait_for '[ "$(count eu)" = 3 ] && [ "$(running eu)" = 3 ]' 30 || fail "eu did not scale up to 3 under load"
echo "autoscale-test: eu scaled 1 -> 3 under load in $((SECONDS - t0)) s"
[ "$(count us)" = 1 ] || fail "us, which takes no traffic, did not stay at 1: $(count us)"
"$plinth" status "$ex" >"$tmp/status.txt" 2>&1
grep -q "autoscale eu: 3 replicas (1-3): requests_per_second = " "$tmp/status.txt" ||
  fail "status does not show the decision: $(cat "$tmp/status.txt")"
curl --noproxy '*' -s "http://127.0.0.1:$ctl_port/metrics" | grep -q 'plinth_service_autoscale_replicas{service="model",region="eu"} 3' ||
  fail "/metrics lacks plinth_service_autoscale_replicas for eu"
# Apply while the autoscaler runs 3 in eu: no change, nothing undone.
"$plinth" plan --detailed-exitcode "$ex" >"$tmp/plan.txt" 2>&1 || fail "the plan while autoscaled is not empty: $(cat "$tmp/plan.txt")"
"$plinth" apply --auto-approve "$ex" >"$tmp/apply2.txt" 2>&1 || fail "apply while autoscaled failed: $(cat "$tmp/apply2.txt")"
[ "$(running eu)" = 3 ] || fail "apply undid the autoscaler: $(running eu) replicas run in eu"
kill "$wrk_pid" 2>/dev/null
wait "$wrk_pid" 2>/dev/null || true
wrk_pid=""
t1=$SECONDS
# The stabilization window (8 s): still 3 half-way through, then 1.
sleep 4
[ "$(count eu)" = 3 ] || fail "eu scaled down $((SECONDS - t1)) s after the load stopped, inside the 8 s window"
wait_for '[ "$(count eu)" = 1 ] && [ "$(running eu)" = 1 ]' 30 || fail "eu did not scale back to 1 after the load stopped"
echo "autoscale-test: eu back to 1 replica $((SECONDS - t1)) s after the load stopped (window 8 s)"

# A scale rule: eu's p95 latency above 0.25 s scales it up although the
# request rate (slow requests, 2 connections) asks for 1 replica.
# The rule is added now (no resource changes: the controller's alert task
# reloads it), evaluated every 2 s (the notification block sets the
# interval; its receiver gets nothing here). The rule votes for eu only.
cat >>"$ex/main.plinth" <<'EOF'

scale_rule "slow" {
  service = "model"
  region  = "eu"
  up_when = histogram_quantile(0.95, metric("inference_request_seconds_bucket", { service = "model", region = "eu" }), 10s) > 0.25
}

receiver "nobody" {
  url = "http://127.0.0.1:9/unused"
}

notification {
  receiver            = "nobody"
  evaluation_interval = 2s
}
EOF
"$plinth" validate "$ex" >"$tmp/validate.txt" 2>&1 || fail "the scale rule does not validate: $(cat "$tmp/validate.txt")"
echo 0.4 >"$tmp/slow"
slow_ms=$(date +%s%3N)
wrk -t1 -c2 -d40s "$url/predict" >"$tmp/wrk-slow.txt" 2>&1 &
wrk_pid=$!
t2=$SECONDS
wait_for '[ "$(count eu)" = 3 ] && [ "$(running eu)" = 3 ]' 40 || fail "the scale rule did not scale eu up under slow requests"
echo "autoscale-test: scale_rule.slow (p95 > 0.25 s) scaled eu 1 -> 3 in $((SECONDS - t2)) s"
[ "$(count us)" = 1 ] || fail "the rule votes for eu only (region = \"eu\"), but us went to $(count us)"
"$plinth" status --json "$ex" | python3 -c '
import json, sys
a = json.load(sys.stdin)["services"][0]["autoscale"]["eu"]
sys.exit(0 if a["signals"].get("scale_rule.slow") == "up" else 1)' ||
  fail "status does not show the rule among eu's signals"
"$plinth" history --dir="$ex" service.model >"$tmp/history.txt" 2>&1 || fail "plinth history failed: $(cat "$tmp/history.txt")"
grep -q 'auto     service.model: scale eu: 1 -> 2' "$tmp/history.txt" && grep -q 'scale_rule.slow (up_when true)' "$tmp/history.txt" ||
  fail "plinth history lacks the rule's scaling: $(cat "$tmp/history.txt")"
# Decision latency: from the slow file (the metric's change) to the first
# scaling step the controller recorded for the rule (history times are whole seconds).
latency=$("$plinth" history --json --dir="$ex" service.model | python3 -c '
import calendar, json, sys, time
since = int(sys.argv[1]) / 1000
ts = [calendar.timegm(time.strptime(e["at"], "%Y-%m-%dT%H:%M:%SZ")) for e in json.load(sys.stdin)["entries"]
      if e.get("action") == "scale" and "scale_rule.slow" in e.get("reason", "")]
print("%.0f" % (ts[0] - since) if ts else "?")' "$slow_ms")
echo "autoscale-test: metric change to first scaling step: ${latency} s (evaluation_interval 2s, p95 over 10s, --interval=1s)"
kill "$wrk_pid" 2>/dev/null || true
wait "$wrk_pid" 2>/dev/null || true
wrk_pid=""
rm -f "$tmp/slow"

# A scale rule with a value: eu's request rate kept at 5 per replica. The
# requests-per-second target and the latency rule go, so the value alone
# decides (an apply: the autoscaler's targets are the service's).
python3 - "$ex/main.plinth" <<'EOF'
import re, sys
path = sys.argv[1]
s = open(path).read()
s = s.replace('    target "requests_per_second" {\n      average = 20\n    }\n', "")
rule = ('scale_rule "busy" {\n  service = "model"\n  region  = "eu"\n'
        '  value   = rate(metric("inference_requests_total", { service = "model", region = "eu" }), 10s)\n'
        '  average = 5\n}\n')
s = re.sub(r'scale_rule "slow" \{.*?\n\}\n', lambda m: rule, s, flags=re.S)
assert 'scale_rule "busy"' in s and "requests_per_second" not in s, "the test's configuration changed"
open(path, "w").write(s)
EOF
"$plinth" apply --auto-approve "$ex" >"$tmp/apply-value.txt" 2>&1 || fail "apply of the value rule failed: $(cat "$tmp/apply-value.txt")"
wait_for '[ "$(count eu)" = 1 ]' 40 || fail "eu did not go back to 1 without load (value rule): $(count eu)"
wrk -t1 -c2 -d40s "$url/predict" >"$tmp/wrk-value.txt" 2>&1 &
wrk_pid=$!
t3=$SECONDS
wait_for '[ "$(count eu)" = 3 ] && [ "$(running eu)" = 3 ]' 40 || fail "the value rule did not scale eu up under load"
echo "autoscale-test: scale_rule.busy (request rate, average 5 per replica) scaled eu 1 -> 3 in $((SECONDS - t3)) s"
"$plinth" status --json "$ex" | python3 -c '
import json, sys
a = json.load(sys.stdin)["services"][0]["autoscale"]["eu"]
v = a["signals"].get("scale_rule.busy")
sys.exit(0 if isinstance(v, (int, float)) and v > 10 else 1)' ||
  fail "status does not show the rule's value among eu's signals: $("$plinth" status --json "$ex")"
"$plinth" history --dir="$ex" service.model >"$tmp/history.txt" 2>&1
grep -q 'because scale_rule.busy = [0-9.]* (target 5)' "$tmp/history.txt" ||
  fail "plinth history lacks the value rule's scaling: $(cat "$tmp/history.txt")"
kill "$wrk_pid" 2>/dev/null || true
wait "$wrk_pid" 2>/dev/null || true
wrk_pid=""
kill "$ctl_pid" 2>/dev/null
wait "$ctl_pid" 2>/dev/null || true
ctl_pid=""
"$plinth" destroy --auto-approve "$ex" >"$tmp/destroy.txt" 2>&1 || fail "destroy failed: $(cat "$tmp/destroy.txt")"
echo "autoscale-test: passed"
