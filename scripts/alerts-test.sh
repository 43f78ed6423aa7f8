#!/usr/bin/env bash
# End-to-end check of alert rules on the controller (docs/automation.md,
# "Alert rules"), through the CLI:
#  - a bad alert condition is a located error from validate;
#  - `plinth alert export` writes a rule file that `promtool check rules`
#    accepts (when promtool is installed);
#  - one service replica (examples/inference's server.py) with a latency
#    histogram; the alert ModelSlow (p95 over 10s > 0.25 s, for 2s) fires
#    when /predict is made slow, and a webhook receiver (HMAC checked by the
#    receiver) gets a firing notification with the annotation rendered; it
#    resolves when /predict is fast again and the receiver gets that too;
#  - an alert on a metric nobody exports shows "no data" and never fires;
#  - `plinth alert silence` holds: firing again sends nothing until the
#    silence is expired, then the receiver is told;
#  - the storage alerts are rules too: a bucket filled past its alert_at fires
#    BucketCapacity once a storage sweep has measured it, and the receiver
#    gets it (labels bucket and severity);
#  - with prometheus-alertmanager installed, the same alert reaches a real
#    Alertmanager (GET /api/v2/alerts lists it).
# Every process it started is stopped by the trap, whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/fixtures/lib.sh
plinth=$(realpath "${1:-build/plinth}")
tmp=$(mktemp -d)
ex="$tmp/ex"
ctl_pid=""
hook_pid=""
load_pid=""
am_pid=""
cleanup() {
  set +e
  [ -n "$load_pid" ] && kill "$load_pid" 2>/dev/null
  [ -n "$ctl_pid" ] && kill -9 "$ctl_pid" 2>/dev/null
  [ -n "$hook_pid" ] && kill "$hook_pid" 2>/dev/null
  [ -n "$am_pid" ] && kill "$am_pid" 2>/dev/null
  for p in $(pgrep -f "server.py" 2>/dev/null); do
    tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "PLINTH_ALERTS_TEST=$tmp" && kill -9 "$p" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "alerts-test: $*" >&2
  echo "--- alert status" >&2
  "$plinth" alert status "$ex" >&2 2>&1
  echo "--- controller log" >&2
  tail -20 "$tmp/controller.log" >&2 2>/dev/null
  exit 1
}

mkdir -p "$ex"
cp examples/inference/server.py "$ex/"
hook_port=$(free_port)
am_port=$(free_port)
am_line=""
if command -v prometheus-alertmanager >/dev/null; then
  am_line="alertmanager = \"http://127.0.0.1:$am_port\""
fi
cat >"$ex/main.plinth" <<EOF
variable "hook_secret" {
  type      = string
  sensitive = true
  default   = "alerts-test-secret"
}

region "lab" {
  host = "127.0.23.1"
}

bucket "data" {
  region        = region.lab
  capacity      = 1MiB
  alert_at      = 50%
  force_destroy = true
}

service "model" {
  regions  = [region.lab]
  replicas = 1
  port     = 20930
  command  = ["python3", "server.py"]
  env = {
    SLOW_FILE          = "$tmp/slow"
    PLINTH_ALERTS_TEST = "$tmp"
  }
  readiness {
    http   = "/ready"
    period = 1s
  }
}

alert "ModelSlow" {
  when     = histogram_quantile(0.95, metric("inference_request_seconds_bucket", {service = "model"}), 10s) > 0.25
  pending_for = 2s
  severity = "page"
  labels = {
    team = "ml"
  }
  annotations = {
    summary = "p95 latency of {{ \$labels.alertname }} is {{ \$value }}s"
  }
}

alert "NobodyExportsThis" {
  when = metric("nobody_exports_this_total") > 0
}

receiver "oncall" {
  url         = "http://127.0.0.1:$hook_port/hook"
  hmac_secret = var.hook_secret
}

notification {
  receiver            = "oncall"
  group_by            = ["alertname"]
  group_wait          = 0s
  group_interval      = 1s
  repeat_interval     = 1h
  evaluation_interval = 1s
  $am_line
}
EOF

# A bad condition: a located error, nothing else runs.
mkdir -p "$tmp/bad"
cat >"$tmp/bad/main.plinth" <<'EOF'
alert "Broken" {
  when = rate(metric("x_total"), 0s) > 1
}
EOF
if "$plinth" validate "$tmp/bad" >"$tmp/bad.txt" 2>&1; then fail "validate accepted a zero range"; fi
grep -q "main.plinth:2:34" "$tmp/bad.txt" || fail "the bad range is not located: $(cat "$tmp/bad.txt")"
grep -q "at least 1s" "$tmp/bad.txt" || fail "the bad range's error does not say what to write: $(cat "$tmp/bad.txt")"

"$plinth" validate "$ex" >"$tmp/validate.txt" 2>&1 || fail "validate failed: $(cat "$tmp/validate.txt")"
"$plinth" alert export "$ex" --out="$tmp/rules.yml" 2>"$tmp/export.txt" || fail "export failed: $(cat "$tmp/export.txt")"
grep -q 'expr: "(max(histogram_quantile(0.95, rate(inference_request_seconds_bucket{service=\\"model\\"}\[10s\]))) > 0.25)"' "$tmp/rules.yml" ||
  fail "the exported expression is not the PromQL expected: $(cat "$tmp/rules.yml")"
if command -v promtool >/dev/null; then
  promtool check rules "$tmp/rules.yml" >"$tmp/promtool.txt" 2>&1 || fail "promtool refused the rules: $(cat "$tmp/promtool.txt")"
  echo "alerts-test: promtool check rules: $(grep -c 'alert:' "$tmp/rules.yml") rules accepted"
else
  echo "alerts-test: promtool is not installed; the rule file was not checked by Prometheus"
fi

# The webhook receiver: records every payload and whether its HMAC held.
python3 - "$hook_port" "$tmp/hooks.jsonl" <<'EOF' >"$tmp/hook.log" 2>&1 &
import hashlib, hmac, json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port, out = int(sys.argv[1]), sys.argv[2]
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        want = "sha256=" + hmac.new(b"alerts-test-secret", body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(want, self.headers.get("X-Plinth-Signature", ""))
        doc = json.loads(body)
        with open(out, "a") as f:
            f.write(json.dumps({"signed": ok, "status": doc["status"],
                                "alerts": [(a["labels"]["alertname"], a["status"], a["annotations"].get("summary", ""))
                                           for a in doc["alerts"]]}) + "\n")
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()
HTTPServer(("127.0.0.1", port), H).serve_forever()
EOF
hook_pid=$!
touch "$tmp/hooks.jsonl"

if [ -n "$am_line" ]; then
  cat >"$tmp/am.yml" <<'EOF'
route:
  receiver: "null"
receivers:
  - name: "null"
EOF
  prometheus-alertmanager --config.file="$tmp/am.yml" --storage.path="$tmp/am" \
    --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address="" >"$tmp/am.log" 2>&1 &
  am_pid=$!
fi

"$plinth" apply --auto-approve "$ex" >"$tmp/apply.txt" 2>&1 || fail "apply failed: $(cat "$tmp/apply.txt")"
ctl_port=$(free_port)
"$plinth" controller "$ex" --interval=500ms --lease-ttl=3s --drift-interval=0 --listen="127.0.0.1:$ctl_port" \
  >"$tmp/controller.log" 2>&1 &
ctl_pid=$!

# state NAME: the alert's state in the controller's status ("no data" appended).
state() {
  "$plinth" alert status --json "$ex" 2>/dev/null | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("rules", []):
    if r["name"] == sys.argv[1]:
        print(r["state"] + (" no-data" if r.get("no_data") else ""))' "$1" 2>/dev/null || true
}
# hooks STATUS NAME: payloads that list NAME with STATUS (firing/resolved), signed.
hooks() {
  python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    d = json.loads(line)
    n += d["signed"] and any(a[0] == sys.argv[3] and a[1] == sys.argv[2] for a in d["alerts"])
print(n)' "$tmp/hooks.jsonl" "$1" "$2"
}
# load SECONDS: /predict requests straight to the replica, one at a time, bounded.
load() {
  python3 - "$1" <<'EOF' &
import sys, time, urllib.request
end = time.time() + float(sys.argv[1])
while time.time() < end:
    try:
        urllib.request.urlopen("http://127.0.23.1:20930/predict", timeout=5).read()
    except Exception:
        time.sleep(0.1)
EOF
  load_pid=$!
}

wait_for '[ "$(state NobodyExportsThis)" = "inactive no-data" ]' 20 || fail "the alert on a missing metric does not say no data: $(state NobodyExportsThis)"
load 60
wait_for '[ "$(state ModelSlow)" = "inactive" ]' 20 || fail "ModelSlow is not evaluated while fast: $(state ModelSlow)"
echo 0.4 >"$tmp/slow"
t0=$SECONDS
wait_for '[ "$(hooks firing ModelSlow)" -ge 1 ]' 30 || fail "the receiver got no signed firing notification"
echo "alerts-test: ModelSlow fired and was notified $((SECONDS - t0)) s after /predict became slow (pending_for = 2s)"
grep -q 'p95 latency of ModelSlow is 0\.[3-9]' "$tmp/hooks.jsonl" || grep -q 'p95 latency of ModelSlow is [1-9]' "$tmp/hooks.jsonl" ||
  fail "the annotation is not rendered: $(cat "$tmp/hooks.jsonl")"
if [ -n "$am_line" ]; then
  wait_for 'curl --noproxy "*" -s "http://127.0.0.1:$am_port/api/v2/alerts" | grep -q "\"alertname\":\"ModelSlow\""' 15 ||
    fail "Alertmanager did not receive ModelSlow: $(tail -5 "$tmp/am.log")"
  echo "alerts-test: Alertmanager lists ModelSlow"
fi
rm -f "$tmp/slow"
t1=$SECONDS
wait_for '[ "$(hooks resolved ModelSlow)" -ge 1 ]' 40 || fail "the receiver was not told ModelSlow resolved"
echo "alerts-test: ModelSlow resolved and was notified $((SECONDS - t1)) s after /predict became fast (range 10s)"
[ "$(hooks firing NobodyExportsThis)" = 0 ] || fail "an alert without data was notified"

# A silence holds: firing again sends nothing while it lasts.
"$plinth" alert silence 'alertname="ModelSlow"' --for=10m --comment="alerts-test" --json --dir="$ex" >"$tmp/silence.json" ||
  fail "alert silence failed"
silence=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$tmp/silence.json")
"$plinth" alert silences "$ex" | grep -q "$silence" || fail "alert silences does not list $silence"
before=$(hooks firing ModelSlow)
echo 0.4 >"$tmp/slow"
wait_for '[ "$(state ModelSlow)" = "firing" ]' 30 || fail "ModelSlow did not fire again: $(state ModelSlow)"
sleep 4
[ "$(hooks firing ModelSlow)" = "$before" ] || fail "a silenced alert was notified"
"$plinth" alert expire "$silence" --dir="$ex" >/dev/null || fail "alert expire failed"
wait_for '[ "$(hooks firing ModelSlow)" -gt "$before" ]' 15 || fail "the alert was not notified after its silence ended"
echo "alerts-test: the silence held for 4 s of firing; the alert was notified once it was expired"
rm -f "$tmp/slow"
"$plinth" status "$ex" | grep -q "alert ModelSlow: firing" || fail "plinth status does not show the firing alert"

# A controller killed -9 while ModelSlow fires, /predict fast meanwhile: the
# next controller carries the alert's state over (alert-state.json) and sends
# its resolution; without the state it would never know the alert fired.
resolved_before=$(hooks resolved ModelSlow)
kill -9 "$ctl_pid"
wait "$ctl_pid" 2>/dev/null || true
python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["alerts"]
assert any(i["phase"] == "firing" for i in s["alert.ModelSlow"]), s' "$ex/.plinth/default/controller/alert-state.json" ||
  fail "alert-state.json does not record ModelSlow firing: $(cat "$ex/.plinth/default/controller/alert-state.json")"
sleep 11  # past the condition's 10 s range: the latency is normal again
"$plinth" controller "$ex" --interval=500ms --lease-ttl=3s --drift-interval=0 --listen="127.0.0.1:$ctl_port" \
  >>"$tmp/controller.log" 2>&1 &
ctl_pid=$!
wait_for '[ "$(hooks resolved ModelSlow)" -gt "$resolved_before" ]' 40 ||
  fail "the restarted controller did not resolve ModelSlow, which fired before the restart"
echo "alerts-test: a controller killed while ModelSlow fired: the next one carried the state over and sent its resolution"

# Storage alerts on the same rules: 700 KiB in a 1 MiB bucket (alert at 50%).
[ "$(hooks firing BucketCapacity)" = 0 ] || fail "BucketCapacity fired before the bucket was filled"
head -c 716800 /dev/urandom >"$tmp/blob"
"$plinth" bucket put bucket.data blob "$tmp/blob" --dir="$ex" >/dev/null 2>&1 || fail "bucket put failed"
"$plinth" storage sweep --dir="$ex" >"$tmp/sweep.txt" 2>&1 || fail "storage sweep failed: $(cat "$tmp/sweep.txt")"
wait_for '[ "$(hooks firing BucketCapacity)" -ge 1 ]' 20 || fail "the receiver did not get BucketCapacity after the sweep"
grep -q 'bucket.data uses 0.68' "$tmp/hooks.jsonl" || fail "the BucketCapacity summary is not rendered: $(tail -1 "$tmp/hooks.jsonl")"
echo "alerts-test: BucketCapacity fired from the storage sweep's metrics and was notified"
curl --noproxy '*' -s "http://127.0.0.1:$ctl_port/metrics" | grep -q '^plinth_alerts_firing [1-9]' || fail "/metrics lacks plinth_alerts_firing"

# A query naming a metric no target exports: plan says so, located (the
# controller recorded what its targets exported).
wait_for '[ -s "$ex/.plinth/default/controller/metric-names.json" ]' 10 || fail "the controller did not record the metric names"
cp "$ex/main.plinth" "$tmp/main.plinth.good"
cat >>"$ex/main.plinth" <<'EOF'

alert "Typo" {
  when = rate(metric("inference_requets_total"), 1m) > 1
}
EOF
"$plinth" plan "$ex" >"$tmp/plan-typo.txt" 2>&1 || fail "plan with a misspelt metric failed: $(cat "$tmp/plan-typo.txt")"
grep -q 'note: .*main.plinth:[0-9]*:[0-9]*: alert.Typo: no target exported metric "inference_requets_total" when the controller last scraped' "$tmp/plan-typo.txt" ||
  fail "plan does not point at the misspelt metric: $(cat "$tmp/plan-typo.txt")"
grep -q 'alert.ModelSlow: no target' "$tmp/plan-typo.txt" && fail "plan warned about a metric the replicas export: $(cat "$tmp/plan-typo.txt")"
cp "$tmp/main.plinth.good" "$ex/main.plinth"
echo "alerts-test: plan located the alert query whose metric no target exports"

kill "$load_pid" 2>/dev/null || true
load_pid=""
kill "$ctl_pid" 2>/dev/null
wait "$ctl_pid" 2>/dev/null || true
ctl_pid=""
"$plinth" destroy --auto-approve "$ex" >"$tmp/destroy.txt" 2>&1 || fail "destroy failed: $(cat "$tmp/destroy.txt")"
echo "alerts-test: passed"
