#!/usr/bin/env bash
# End-to-end checks of regions that fail (docs/services.md, "Regions that
# fail"), through the CLI, with a real HAProxy on 127.0.0.1:
#  - namespaces (root only): a copy of examples/inference whose two regions
#    have isolation = "namespace" (hosts 10.213.1.2 and 10.213.2.2) applies;
#    the replicas run inside the namespaces; HAProxy serves from eu;
#    `plinth region fail eu` takes eu's link down under sequential load
#    (scripts/load-recorder.py): at most the request in flight fails, and
#    within 15 s requests are answered by us; recovering loses none, no request to eu's host succeeds from here, and eu's
#    replicas keep running; failing it again and recovering a healthy region
#    say so and exit 0; an unknown region is an error naming the known ones;
#    `plinth region recover eu` brings traffic back to eu; destroy removes
#    the namespaces, links and routes; `plinth region delay eu 200ms` slows
#    eu down (skipped where the kernel has no sch_netem, with the reason);
#  - the fallback (any user): a copy without isolation: fail stops eu's
#    replicas (state T) and traffic moves to us; recover continues them;
#  - relocation (any user): a copy with on_region_failure = "relocate" under
#    `plinth controller`: when eu fails, eu's two replicas run in us (us/3,
#    us/4, PLINTH_RELOCATED_FROM=eu), HAProxy reports them UP and `plinth
#    status` says where they run; us's own replicas are not restarted; when
#    eu recovers its replicas come back and the relocated ones stop.
# Without root, or where `ip netns add` fails (a container without
# CAP_SYS_ADMIN), the namespace part says why it is skipped.
# Every process, namespace, link and route it made is removed by the trap,
# whatever happened.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/fixtures/lib.sh
plinth=$(realpath "${1:-build/plinth}")
tmp=$(mktemp -d)
ns_ex="$tmp/ns"
plain_ex="$tmp/plain"
reloc_ex="$tmp/reloc"
cleanup() {
  set +e
  local ex p n
  [ -n "${ctl_pid:-}" ] && kill -9 "$ctl_pid" 2>/dev/null
  [ -n "${load_pid:-}" ] && kill "$load_pid" 2>/dev/null
  for ex in "$ns_ex" "$plain_ex" "$reloc_ex"; do
    # The namespaces this test's regions have (the names hash their directories).
    if [ -d "$ex/.plinth" ]; then
      for n in $("$plinth" region status --json "$ex" 2>/dev/null |
        python3 -c 'import json,sys; [print(r["netns"]) for r in json.load(sys.stdin)["regions"] if "netns" in r]' 2>/dev/null); do
        ip netns del "$n" 2>/dev/null
        ip link del "pl${n:7:8}h" 2>/dev/null
      done
    fi
    for f in "$ex"/.plinth/default/lb/*/instance; do
      [ -f "$f" ] && kill -9 -- "-$(cut -d' ' -f1 "$f")" 2>/dev/null
    done
  done
  for p in $(pgrep -f "server.py" 2>/dev/null); do
    if tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "PLINTH_REGION_TEST=$tmp"; then
      kill -CONT "$p" 2>/dev/null
      kill -9 "$p" 2>/dev/null
    fi
  done
  ip route del unreachable 10.213.1.0/24 metric 4242 2>/dev/null
  ip route del unreachable 10.213.2.0/24 metric 4242 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "region-test: $*" >&2
  exit 1
}
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || fail "haproxy is not installed (scripts/deps.sh installs it)"

# example DIR EU_HOST US_HOST ISOLATION PORT [POLICY]: a copy of
# examples/inference with the regions' hosts and isolation, the replicas on
# PORT.., on_region_failure = POLICY when given, marked with this test's
# directory (the trap finds them by it).
example() {
  local dir=$1 eu=$2 us=$3 iso=$4 port=$5 policy=${6:-}
  cp -r examples/inference "$dir"
  rm -rf "$dir/.plinth"
  python3 - "$dir/main.plinth" "$eu" "$us" "$iso" "$port" "$tmp" "$policy" <<'EOF'
import sys
path, eu, us, iso, port, mark, policy = sys.argv[1:]
s = open(path).read()
extra = '\n  isolation = "namespace"' if iso == "namespace" else ""
s = s.replace('region "eu" {\n  host = "127.0.1.1"\n}', 'region "eu" {\n  host = "%s"%s\n}' % (eu, extra))
s = s.replace('region "us" {\n  host = "127.0.2.1"\n}', 'region "us" {\n  host = "%s"%s\n}' % (us, extra))
s = s.replace("port     = 20100", "port     = %s" % port)
s = s.replace('    WARMUP_SECONDS = "1"', '    WARMUP_SECONDS = "1"\n    PLINTH_REGION_TEST = "%s"' % mark)
if policy:
    s = s.replace("port     = %s" % port, 'port     = %s\n  on_region_failure = "%s"' % (port, policy))
assert s.count('host = "%s"' % eu) == 1 and ("port     = %s" % port) in s and mark in s, "the example changed"
open(path, "w").write(s)
EOF
}

lb_port=$(free_port)
export PLINTH_VAR_lb_port="$lb_port"
url="http://127.0.0.1:$lb_port"
region_of() {
  curl --noproxy '*' -s -m 2 -d x "$url/predict" | python3 -c 'import json,sys; print(json.load(sys.stdin)["region"])'
}
# The pids of this test's replicas in region $1.
replicas_of() {
  local p
  for p in $(pgrep -f "server.py" 2>/dev/null); do
    tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "PLINTH_REGION_TEST=$tmp" &&
      tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "PLINTH_REGION=$1" && echo "$p"
  done
  return 0
}
proc_state() { sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1; }

# ------------------------------------------------------------ namespaces
ns_skip=""
if [ "$(id -u)" != 0 ]; then
  ns_skip="not running as root"
elif ! command -v ip >/dev/null && [ ! -x /usr/sbin/ip ] && [ ! -x /sbin/ip ]; then
  ns_skip="iproute2 (ip) is not installed"
elif ! ip netns add "plinth-probe-$$" 2>"$tmp/probe.err"; then
  ns_skip="ip netns add fails here: $(cat "$tmp/probe.err")"
else
  ip netns del "plinth-probe-$$"
fi
if [ -n "$ns_skip" ]; then
  echo "region-test: the namespace part is skipped: $ns_skip"
else
  example "$ns_ex" 10.213.1.2 10.213.2.2 namespace 20100
  "$plinth" apply --auto-approve "$ns_ex" >"$tmp/apply.txt" 2>&1 || fail "apply with namespaces failed: $(cat "$tmp/apply.txt")"
  [ "$(region_of)" = eu ] || fail "the primary region does not serve: $(curl --noproxy '*' -s -m 2 "$url/predict")"
  "$plinth" region status --json "$ns_ex" >"$tmp/status.json"
  mapfile -t namespaces < <(python3 -c 'import json,sys; [print(r["netns"]) for r in json.load(open(sys.argv[1]))["regions"]]' "$tmp/status.json")
  [ "${#namespaces[@]}" = 2 ] || fail "region status does not show two namespaces: $(cat "$tmp/status.json")"
  for n in "${namespaces[@]}"; do
    ip netns list | grep -q "^$n\b" || fail "namespace $n does not exist after apply: $(ip netns list)"
  done
  # The replicas run inside their region's namespace.
  eu_pids=$(replicas_of eu)
  [ -n "$eu_pids" ] || fail "no replica of eu runs"
  for p in $eu_pids; do
    [ "$(readlink "/proc/$p/ns/net")" != "$(readlink /proc/self/ns/net)" ] || fail "replica $p of eu runs in the root namespace"
  done
  "$plinth" plan --detailed-exitcode "$ns_ex" >"$tmp/plan.txt" 2>&1 || fail "the plan after apply is not empty: $(cat "$tmp/plan.txt")"

  # Injected latency (tc netem inside the namespace); this kernel may lack sch_netem.
  if "$plinth" region delay eu 200ms "$ns_ex" >"$tmp/delay.txt" 2>&1; then
    t=$(curl --noproxy '*' -s -m 5 -o /dev/null -w '%{time_total}' http://10.213.1.2:20100/ready)
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 0.2 else 1)" "$t" ||
      fail "a request to eu took $t s with 200ms of injected delay"
    "$plinth" region delay eu 0ms "$ns_ex" >"$tmp/delay.txt" 2>&1 || fail "removing the delay failed: $(cat "$tmp/delay.txt")"
  elif grep -q "the kernel has no netem qdisc: load sch_netem" "$tmp/delay.txt"; then
    echo "region-test: the delay part is skipped: $(cat "$tmp/delay.txt")"
  else
    fail "region delay failed: $(cat "$tmp/delay.txt")"
  fi

  # Region loss under load: sequential requests through HAProxy while eu's link goes down.
  python3 scripts/load-recorder.py "$url/predict" "$tmp/load.txt" "$tmp/load.stop" &
  load_pid=$!
  sleep 2
  mark=$(date +%s.%N)
  "$plinth" region fail eu "$ns_ex" >"$tmp/fail.txt" 2>&1 || fail "region fail eu failed: $(cat "$tmp/fail.txt")"
  wait_for '[ "$(region_of)" = us ]' 15 || fail "traffic did not move to us within 15 s: $(curl --noproxy '*' -s -m 2 "$url/predict")"
  sleep 3
  touch "$tmp/load.stop"
  wait "$load_pid"
  read -r n failed first settled < <(python3 scripts/load-recorder.py --summary "$tmp/load.txt" "$mark" us)
  echo "region-test: eu lost under load: $failed of $n requests failed (first $first s after the link went down); every answer from us $settled s after it"
  # At most the request in flight at that instant may fail (sequential requests: one).
  [ "$failed" -le 1 ] || fail "$failed of $n requests failed while eu went down: $(grep -v ' 200 ' "$tmp/load.txt" | head -5)"
  for i in 1 2 3 4 5; do
    code=$(curl --noproxy '*' -s -m 2 -o /dev/null -w '%{http_code}' http://10.213.1.2:20100/ready || true)
    [ "$code" != 200 ] || fail "eu's replica answered from the root namespace while eu is failed"
  done
  for p in $eu_pids; do kill -0 "$p" 2>/dev/null || fail "replica $p of eu died when its region failed"; done
  "$plinth" region status --json "$ns_ex" | python3 -c '
import json, sys
r = {x["name"]: x for x in json.load(sys.stdin)["regions"]}
assert r["eu"]["failed"] and r["eu"]["method"] == "namespace" and r["eu"]["link"] == "down", r["eu"]
assert not r["us"]["failed"] and r["us"]["link"] == "up", r["us"]' || fail "region status does not show eu failed"
  "$plinth" region fail eu "$ns_ex" >"$tmp/again.txt" 2>&1 || fail "failing a failed region is an error: $(cat "$tmp/again.txt")"
  grep -q "already failed" "$tmp/again.txt" || fail "failing a failed region does not say so: $(cat "$tmp/again.txt")"
  if "$plinth" region fail nowhere "$ns_ex" >"$tmp/unknown.txt" 2>&1; then fail "an unknown region is no error"; fi
  grep -q "its regions are 'eu', 'us'" "$tmp/unknown.txt" || fail "the error does not name the regions: $(cat "$tmp/unknown.txt")"

  rm -f "$tmp/load.stop"
  python3 scripts/load-recorder.py "$url/predict" "$tmp/load2.txt" "$tmp/load.stop" &
  load_pid=$!
  sleep 1
  mark=$(date +%s.%N)
  "$plinth" region recover eu "$ns_ex" >"$tmp/recover.txt" 2>&1 || fail "region recover eu failed: $(cat "$tmp/recover.txt")"
  wait_for '[ "$(region_of)" = eu ]' 15 || fail "traffic did not come back to eu within 15 s"
  sleep 2
  touch "$tmp/load.stop"
  wait "$load_pid"
  read -r n failed first settled < <(python3 scripts/load-recorder.py --summary "$tmp/load2.txt" "$mark" eu)
  echo "region-test: eu recovered under load: $failed of $n requests failed; every answer from eu $settled s after recover"
  [ "$failed" = 0 ] || fail "$failed of $n requests failed while eu came back: $(grep -v ' 200 ' "$tmp/load2.txt" | head -5)"
  "$plinth" region recover eu "$ns_ex" >"$tmp/again.txt" 2>&1 || fail "recovering a healthy region is an error"
  grep -q "is not failed" "$tmp/again.txt" || fail "recovering a healthy region does not say so: $(cat "$tmp/again.txt")"

  "$plinth" destroy --auto-approve "$ns_ex" >"$tmp/destroy.txt" 2>&1 || fail "destroy failed: $(cat "$tmp/destroy.txt")"
  for n in "${namespaces[@]}"; do
    if ip netns list | grep -q "^$n\b"; then fail "namespace $n is left after destroy"; fi
    if ip link show "pl${n:7:8}h" >/dev/null 2>&1; then fail "link pl${n:7:8}h is left after destroy"; fi
  done
  if ip route | grep -q "10.213.[12].0/24"; then fail "a route is left after destroy: $(ip route | grep 10.213)"; fi
  [ -z "$(replicas_of eu)$(replicas_of us)" ] || fail "replicas are left after destroy"
  echo "region-test: namespaces: eu failed over to us and back, destroy removed the namespaces"
fi

# ------------------------------------------------------------ the fallback
example "$plain_ex" 127.0.13.1 127.0.14.1 none 20650
"$plinth" apply --auto-approve "$plain_ex" >"$tmp/apply.txt" 2>&1 || fail "apply without namespaces failed: $(cat "$tmp/apply.txt")"
# Run as root without `user`, the plan says the replicas will run as root.
if [ "$(id -u)" = 0 ]; then
  grep -q "note: service.model: its replicas will run as root, because Plinth does and user is unset" "$tmp/apply.txt" ||
    fail "the plan does not say the replicas will run as root: $(cat "$tmp/apply.txt")"
fi
[ "$(region_of)" = eu ] || fail "the primary region does not serve (fallback copy)"
eu_pids=$(replicas_of eu)
[ -n "$eu_pids" ] || fail "no replica of eu runs (fallback copy)"
if "$plinth" region delay eu 50ms "$plain_ex" >"$tmp/delay.txt" 2>&1; then fail "a delay without a namespace was accepted"; fi
grep -q "has no network namespace" "$tmp/delay.txt" || fail "delay without a namespace: $(cat "$tmp/delay.txt")"
"$plinth" region fail eu "$plain_ex" >"$tmp/fail.txt" 2>&1 || fail "region fail eu failed: $(cat "$tmp/fail.txt")"
grep -q "2 replicas stopped" "$tmp/fail.txt" || fail "region fail did not stop eu's two replicas: $(cat "$tmp/fail.txt")"
for p in $eu_pids; do [ "$(proc_state "$p")" = T ] || fail "replica $p of eu is not stopped: $(proc_state "$p")"; done
for p in $(replicas_of us); do [ "$(proc_state "$p")" != T ] || fail "replica $p of us was stopped too"; done
wait_for '[ "$(region_of)" = us ]' 15 || fail "traffic did not move to us within 15 s (fallback copy)"
"$plinth" region recover eu "$plain_ex" >"$tmp/recover.txt" 2>&1 || fail "region recover eu failed: $(cat "$tmp/recover.txt")"
for p in $eu_pids; do [ "$(proc_state "$p")" != T ] || fail "replica $p of eu is still stopped after recover"; done
wait_for '[ "$(region_of)" = eu ]' 15 || fail "traffic did not come back to eu within 15 s (fallback copy)"
"$plinth" destroy --auto-approve "$plain_ex" >"$tmp/destroy.txt" 2>&1 || fail "destroy failed: $(cat "$tmp/destroy.txt")"
echo "region-test: fallback: eu's replicas were stopped and continued, traffic followed"

# ------------------------------------------------------------ relocation
# The replicas of this test's copy in region $1 that stand in for region $2.
relocated_of() {
  local p
  for p in $(replicas_of "$1"); do
    tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "PLINTH_RELOCATED_FROM=$2" && echo "$p"
  done
  return 0
}
example "$reloc_ex" 127.0.17.1 127.0.18.1 none 20750 relocate
"$plinth" apply --auto-approve "$reloc_ex" >"$tmp/apply.txt" 2>&1 || fail "apply with relocation failed: $(cat "$tmp/apply.txt")"
grep -q "relocation_endpoints" "$tmp/apply.txt" || fail "the plan does not show the relocation endpoints: $(cat "$tmp/apply.txt")"
[ "$(region_of)" = eu ] || fail "the primary region does not serve (relocation copy)"
us_own=$(replicas_of us | sort)
ctl_port=$(free_port)
"$plinth" controller "$reloc_ex" --interval=1s --lease-ttl=4s --listen="127.0.0.1:$ctl_port" >"$tmp/controller.log" 2>&1 &
ctl_pid=$!
wait_for '"$plinth" status --json "$reloc_ex" 2>/dev/null | python3 -c "import json,sys; d=json.load(sys.stdin); assert d[\"services\"][0][\"ready\"] == 4"' 20 ||
  fail "the controller does not report the service ready: $("$plinth" status "$reloc_ex" 2>&1)"
"$plinth" region fail eu "$reloc_ex" >"$tmp/fail.txt" 2>&1 || fail "region fail eu failed: $(cat "$tmp/fail.txt")"
wait_for '[ "$(relocated_of us eu | wc -l)" = 2 ]' 20 ||
  fail "eu's replicas were not relocated to us within 20 s: $("$plinth" status "$reloc_ex" 2>&1)"
wait_for '"$plinth" status --json "$reloc_ex" | python3 -c "
import json, sys
d = json.load(sys.stdin)
s = d[\"services\"][0]
moved = [r[\"id\"] for r in s[\"replicas\"] if r.get(\"relocated_from\") == \"eu\" and r[\"ready\"]]
assert sorted(moved) == [\"model.us.3\", \"model.us.4\"], moved
up = {v[\"id\"] for l in d[\"load_balancers\"] for v in l[\"servers\"] if v[\"status\"].startswith(\"UP\")}
assert {\"us/3\", \"us/4\"} <= up, up"' 30 ||
  fail "status does not show eu's replicas relocated to us and UP in HAProxy: $("$plinth" status "$reloc_ex" 2>&1)"
"$plinth" status "$reloc_ex" >"$tmp/status.txt" 2>&1
grep -q "region eu failed: its replicas run in us" "$tmp/status.txt" || fail "status does not say where eu's replicas run: $(cat "$tmp/status.txt")"
grep -q "model.us.3 (for eu): running, ready" "$tmp/status.txt" || fail "status does not mark the relocated replica: $(cat "$tmp/status.txt")"
[ "$(region_of)" = us ] || fail "us does not serve while eu is failed"
[ "$(replicas_of us | sort | grep -vxF -f <(relocated_of us eu) || true)" = "$us_own" ] || fail "us's own replicas were restarted"
"$plinth" region recover eu "$reloc_ex" >"$tmp/recover.txt" 2>&1 || fail "region recover eu failed: $(cat "$tmp/recover.txt")"
wait_for '[ -z "$(relocated_of us eu)" ] && [ "$(replicas_of eu | wc -l)" = 2 ]' 40 ||
  fail "after recovery eu does not run its replicas again or the relocated ones still run: $("$plinth" status "$reloc_ex" 2>&1)"
wait_for '[ "$(region_of)" = eu ]' 15 || fail "traffic did not come back to eu after recovery (relocation copy)"
kill "$ctl_pid" 2>/dev/null
wait "$ctl_pid" 2>/dev/null || true
ctl_pid=""
"$plinth" destroy --auto-approve "$reloc_ex" >"$tmp/destroy.txt" 2>&1 || fail "destroy failed: $(cat "$tmp/destroy.txt")"
echo "region-test: relocation: eu's replicas ran in us while eu was failed, and went home when it recovered"
echo "region-test: passed"
