#!/usr/bin/env bash
# End-to-end checks of the controller (docs/controller.md): two controllers on
# one workspace, one leads and runs the storage sweep (a due backup is taken),
# the other stands by; /healthz, /metrics (promtool check metrics), /status,
# the bearer token on POST /run; the leader is killed with SIGKILL and the
# standby takes over within lease-ttl + interval with a higher term; plinth
# status --json; SIGTERM releases the lease and exits 0. Every controller is
# stopped by the trap, also on failure. Everything listens on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
plinth=$(realpath "${1:-build/plinth}")
. tests/fixtures/lib.sh
tmp=$(mktemp -d)
pids=()
cleanup() {
  if [ "${#pids[@]}" -gt 0 ]; then stop_pids 5 "${pids[@]}"; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "controller-test: $*" >&2
  for f in "$tmp"/ctl-*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -20 "$f" >&2; }; done
  exit 1
}
command -v promtool >/dev/null || fail "promtool is not installed (scripts/deps.sh installs it)"
command -v curl >/dev/null || fail "curl is not installed"

interval_s=1
ttl_s=4
d="$tmp/ws"
mkdir -p "$d"
cat >"$d/main.plinth" <<'EOF'
region "eu" {}
region "us" { port_base = 21000 }

bucket "data" {
  region = region.eu
  backup {
    every = 24h
    to    = region.us
    keep  = { last = 3 }
  }
}
EOF
"$plinth" apply --auto-approve "$d" >"$tmp/apply.txt" 2>&1 || fail "apply failed: $(cat "$tmp/apply.txt")"
"$plinth" bucket put bucket.data main.plinth "$d/main.plinth" --dir="$d" >"$tmp/out" 2>&1 || fail "bucket put failed: $(cat "$tmp/out")"

# Refusals before anything starts.
set +e
"$plinth" controller "$d" --listen=0.0.0.0:1 >"$tmp/out" 2>&1
rc=$?
set -e
[ "$rc" = 2 ] && grep -q -- "--allow-remote" "$tmp/out" || fail "a non-loopback --listen was not refused: rc $rc $(cat "$tmp/out")"
"$plinth" status "$d" >"$tmp/out" 2>&1 && fail "status without a controller exited 0"
grep -q "no controller" "$tmp/out" || fail "status without a controller said: $(cat "$tmp/out")"

start() {  # start NAME PORT: a controller in the background, its pid appended to pids
  "$plinth" controller "$d" --listen="127.0.0.1:$2" --interval=${interval_s}s --lease-ttl=${ttl_s}s \
    >"$tmp/ctl-$1.log" 2>&1 &
  pids+=($!)
}
port_a=$(free_port)
start a "$port_a"
pid_a=${pids[-1]}
port_b=$(free_port)
start b "$port_b"
pid_b=${pids[-1]}
for p in "$port_a" "$port_b"; do
  wait_for "curl -sf http://127.0.0.1:$p/healthz" 15 || fail "controller on port $p did not answer /healthz"
done

field() {  # field PORT KEY: a top-level field of GET /status
  curl -sf "http://127.0.0.1:$1/status" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
leaders() { echo "$(field "$port_a" leader) $(field "$port_b" leader)"; }
wait_for '[ "$(leaders)" = "True False" ] || [ "$(leaders)" = "False True" ]' 15 ||
  fail "not exactly one leader: $(leaders)"
if [ "$(field "$port_a" leader)" = True ]; then
  lead_pid=$pid_a lead_port=$port_a standby_port=$port_b
else
  lead_pid=$pid_b lead_port=$port_b standby_port=$port_a
fi
term1=$(field "$lead_port" term)
[ "$(field "$standby_port" holder)" = "$(field "$lead_port" self)" ] || fail "the standby does not see the leader"

# The leader ran the storage sweep: the bucket was swept and its due backup taken.
wait_for "grep -q '1 backups taken' '$d/.plinth/default/controller/status.json'" 60 ||
  fail "the leader's storage sweep took no backup: $(cat "$d/.plinth/default/controller/status.json")"
"$plinth" backup list bucket.data --dir="$d" >"$tmp/backups.txt" 2>&1 || fail "backup list failed: $(cat "$tmp/backups.txt")"
[ "$(grep -c . "$tmp/backups.txt")" -ge 1 ] || fail "no snapshot listed after the controller's backup"
[ -f "$d/.plinth/default/metrics/storage.prom" ] || fail "the sweep wrote no storage metrics"

# Endpoints.
for p in "$lead_port" "$standby_port"; do
  curl -sf "http://127.0.0.1:$p/metrics" >"$tmp/metrics.txt" || fail "GET /metrics failed on $p"
  promtool check metrics <"$tmp/metrics.txt" >"$tmp/promtool.txt" 2>&1 ||
    fail "promtool check metrics rejected /metrics: $(cat "$tmp/promtool.txt")"
  grep -q '^plinth_controller_up 1$' "$tmp/metrics.txt" || fail "plinth_controller_up is not 1 on $p"
done
curl -sf "http://127.0.0.1:$lead_port/metrics" | grep -q '^plinth_controller_leader 1$' || fail "leader metric not 1"
curl -sf "http://127.0.0.1:$standby_port/metrics" | grep -q '^plinth_controller_leader 0$' || fail "standby metric not 0"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$lead_port/run?task=storage-sweep")
[ "$code" = 401 ] || fail "POST /run without the token answered $code, want 401"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer wrong" \
  "http://127.0.0.1:$lead_port/run?task=storage-sweep")
[ "$code" = 401 ] || fail "POST /run with a wrong token answered $code, want 401"
token=$(cat "$d/.plinth/default/controller/token")
[ "$(stat -c %a "$d/.plinth/default/controller/token")" = 600 ] || fail "the token file is not private"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$lead_port/run?task=storage-sweep")
[ "$code" = 202 ] || fail "POST /run with the token answered $code, want 202"
grep -qr "$token" "$tmp"/ctl-*.log && fail "a controller printed the token"

# A third controller: a port in use is reported (exit 1); --once while another
# leads is one standby pass (exit 0, leader false, nothing swept).
set +e
"$plinth" controller "$d" --listen="127.0.0.1:$lead_port" >"$tmp/out" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] && grep -q "cannot listen on 127.0.0.1:$lead_port" "$tmp/out" ||
  fail "a port in use was not reported: rc $rc $(cat "$tmp/out")"
"$plinth" controller "$d" --once >"$tmp/once.json" 2>&1 || fail "--once as a standby failed: $(cat "$tmp/once.json")"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if not s["leader"] and s["sweeps"][0]["runs"] == 0 else 1)' \
  "$tmp/once.json" || fail "--once as a standby led or swept: $(cat "$tmp/once.json")"

"$plinth" status "$d" --json >"$tmp/status.json" || fail "plinth status --json exited non-zero with a leader running"
python3 - "$tmp/status.json" "$term1" <<'EOF' || fail "plinth status --json is wrong: $(cat "$tmp/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["format_version"] == 1 and s["live"] is True and s["leader"] is True, s
assert s["term"] == int(sys.argv[2]), s
assert s["sweeps"][0]["name"] == "storage-sweep" and s["sweeps"][0]["runs"] >= 1, s
EOF

# Kill the leader: the standby leads within lease-ttl + interval (plus 0.5 s
# for a pass's own duration on a loaded machine), with a higher term.
exec 3>&2 2>/dev/null  # reap it quietly: the shell reports "Killed" on its own stderr
kill_ms=$(date +%s%3N)
kill -9 "$lead_pid"
wait "$lead_pid" || true
exec 2>&3 3>&-
wait_for "[ \"\$(field $standby_port leader)\" = True ]" $((ttl_s + interval_s + 5)) ||
  fail "the standby did not take over"
# The standby's own record of when it took the lease, so this script's polling does not count.
since_ms=$(field "$standby_port" leader_since_ms)
elapsed=$(python3 -c "print(round(($since_ms - $kill_ms) / 1000, 2))")
python3 -c "import sys; sys.exit(0 if $elapsed <= $ttl_s + $interval_s + 0.5 else 1)" ||
  fail "takeover took ${elapsed}s, more than lease-ttl + interval (+0.5 s)"
term2=$(field "$standby_port" term)
[ "$term2" -gt "$term1" ] || fail "the term did not increase on takeover: $term1 -> $term2"
wait_for "'$plinth' status '$d' --json | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s[\"live\"] and s[\"term\"] == $term2 else 1)'" 10 ||
  fail "plinth status does not show the new leader"
echo "controller-test: takeover in ${elapsed}s (bound $((ttl_s + interval_s))s), term $term1 -> $term2"

# SIGTERM: the lease is released, exit 0, and status says no controller.
standby_pid=$([ "$lead_pid" = "$pid_a" ] && echo "$pid_b" || echo "$pid_a")
kill -TERM "$standby_pid"
set +e
wait "$standby_pid"
rc=$?
set -e
[ "$rc" = 0 ] || fail "the controller exited $rc on SIGTERM, want 0"
"$plinth" status "$d" >"$tmp/out" 2>&1 && fail "status after SIGTERM exited 0: $(cat "$tmp/out")"
grep -q "stopped" "$tmp/out" || fail "status after SIGTERM said: $(cat "$tmp/out")"
echo "controller-test: ok"
