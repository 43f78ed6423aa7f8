#!/usr/bin/env bash
# End-to-end checks of the controller's drift task (docs/controller.md,
# "Drift"): three markers, two with lifecycle { correct_drift = true }; two
# are edited outside Plinth and one opted-in marker is deleted. `plinth
# controller --once` reports all three (attribute names only, never values),
# corrects the edited opted-in one (its file restored), leaves the other
# edit alone and does not create the deleted one; --drift-interval=0 turns
# the task off; while another holder has the workspace lock the correction
# is skipped and said so; under the running controller `plinth status`
# prints one line per drifted resource, /metrics has the drift families
# (promtool when installed), and a broken configuration is the task's error
# (file:line:col) while the controller stays up. Every controller is
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
  echo "drift-test: $*" >&2
  [ -f "$tmp/ctl.log" ] && { echo "--- controller log" >&2; tail -20 "$tmp/ctl.log" >&2; }
  exit 1
}
command -v curl >/dev/null || fail "curl is not installed"
command -v sqlite3 >/dev/null || fail "sqlite3 is not installed"

d="$tmp/ws"
m="$d/.plinth/default/data/m"
mkdir -p "$d"
cat >"$d/main.plinth" <<'EOF'
marker "fixed" {
  path    = "m/fixed"
  content = "as configured"

  lifecycle {
    correct_drift = true
  }
}

marker "reported" {
  path    = "m/reported"
  content = "as configured"
}

marker "gone" {
  path = "m/gone"

  lifecycle {
    correct_drift = true
  }
}
EOF
"$plinth" apply --auto-approve "$d" >"$tmp/apply.txt" 2>&1 || fail "apply failed: $(cat "$tmp/apply.txt")"
printf 'secret-edit-1' >"$m/fixed"
printf 'secret-edit-2' >"$m/reported"
rm "$m/gone"  # deleted outside Plinth: reported, never created again by the drift task

# --drift-interval=0: no drift task, nothing corrected.
"$plinth" controller "$d" --once --drift-interval=0 >"$tmp/off.json" 2>"$tmp/off.err" ||
  fail "--once --drift-interval=0 failed: $(cat "$tmp/off.json" "$tmp/off.err")"
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit("drift" in s)' "$tmp/off.json" ||
  fail "--drift-interval=0 still ran the drift task: $(cat "$tmp/off.json")"
[ "$(cat "$m/fixed")" = secret-edit-1 ] || fail "--drift-interval=0 changed the opted-in marker"

# Another holder has the workspace lock (a lock row from another machine,
# which is never presumed dead): drift is reported, the correction skipped.
lock_id=0123456789abcdef0123456789abcdef
sqlite3 "$d/.plinth/default/state.db" "INSERT INTO lock(singleton, id, pid, host, command, since_ms, boot_id, \
  start_time, machine_id, pid_namespace) VALUES (1, '$lock_id', 4242, 'elsewhere', 'apply', \
  $(date +%s%3N), 'boot', '1', 'another-machine', 'ns')"
set +e
"$plinth" controller "$d" --once --drift-interval=1s >"$tmp/locked.json" 2>"$tmp/locked.err"
set -e
python3 - "$tmp/locked.json" <<'EOF' || fail "with the lock held: $(cat "$tmp/locked.json" "$tmp/locked.err")"
import json, sys
s = json.load(open(sys.argv[1]))["drift"]
assert s["last_error"] == "", s
assert "corrections skipped: the workspace lock is held" in s["skipped"], s
assert "elsewhere" in s["skipped"], s
r = {x["address"]: x for x in s["resources"]}
assert set(r) == {"marker.fixed", "marker.reported", "marker.gone"}, s
assert not any(x["corrected"] for x in r.values()), s
EOF
[ "$(cat "$m/fixed")" = secret-edit-1 ] || fail "the opted-in marker was corrected while the lock was held"
"$plinth" force-unlock --dir="$d" "$lock_id" >"$tmp/unlock.txt" 2>&1 || fail "force-unlock failed: $(cat "$tmp/unlock.txt")"

# One pass: both reported, the opted-in one corrected, the other left alone.
"$plinth" controller "$d" --once --drift-interval=1s >"$tmp/once.json" 2>"$tmp/once.err" ||
  fail "--once failed: $(cat "$tmp/once.json" "$tmp/once.err")"
python3 - "$tmp/once.json" <<'EOF' || fail "--once drift status is wrong: $(cat "$tmp/once.json")"
import json, sys
s = json.load(open(sys.argv[1]))["drift"]
assert s["last_error"] == "" and s["skipped"] == "" and s["checked_at"], s
assert s["checks"] == 1 and s["corrections"] == 1, s
r = {x["address"]: x for x in s["resources"]}
assert set(r) == {"marker.fixed", "marker.reported", "marker.gone"}, s
f, o, g = r["marker.fixed"], r["marker.reported"], r["marker.gone"]
assert g["deleted"] and g["correct_drift"] and not g["corrected"] and "never creates" in g["error"], s
assert f["attributes"] == ["content"] and o["attributes"] == ["content"], s
assert f["correct_drift"] and f["corrected"] and f["error"] == "" and f["action"] == "update", s
assert not o["correct_drift"] and not o["corrected"] and o["plan_changes"] and o["action"] == "update", s
EOF
grep -q secret-edit "$tmp/once.json" && fail "the drift status quotes a drifted value"
[ "$(cat "$m/fixed")" = "as configured" ] || fail "the opted-in marker was not restored: $(cat "$m/fixed")"
[ "$(cat "$m/reported")" = secret-edit-2 ] || fail "the marker without correct_drift was changed"
[ -e "$m/gone" ] && fail "the drift task created the marker deleted outside Plinth"
# The stored status document carries the section too (the controller stopped: exit 1).
"$plinth" status "$d" --json >"$tmp/status.json" 2>&1 || true
python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); sys.exit(0 if len(s["drift"]["resources"]) == 3 else 1)' \
  "$tmp/status.json" || fail "plinth status --json has no drift: $(cat "$tmp/status.json")"

# Under the running controller: edit the opted-in marker again; status shows
# the one left alone, /metrics counts the correction.
printf 'secret-edit-3' >"$m/fixed"
port=$(free_port)
"$plinth" controller "$d" --listen="127.0.0.1:$port" --interval=500ms --lease-ttl=3s --drift-interval=1s \
  >"$tmp/ctl.log" 2>&1 &
pids+=($!)
wait_for "curl -sf http://127.0.0.1:$port/healthz" 15 || fail "the controller did not answer /healthz"
wait_for "[ \"\$(cat '$m/fixed')\" = 'as configured' ]" 15 || fail "the running controller did not correct the marker"
wait_for "'$plinth' status '$d' | grep -q '^drift: marker.reported: content changed outside Plinth$'" 15 ||
  fail "plinth status has no drift line: $("$plinth" status "$d" 2>&1)"
"$plinth" status "$d" | grep -q '^drift: marker.gone: deleted outside Plinth; not corrected: the drift task never creates' ||
  fail "plinth status does not explain the deleted marker: $("$plinth" status "$d" 2>&1)"
curl -sf "http://127.0.0.1:$port/metrics" >"$tmp/metrics.txt" || fail "GET /metrics failed"
grep -q '^plinth_drift_resources 2$' "$tmp/metrics.txt" || fail "plinth_drift_resources is not 2: $(grep drift "$tmp/metrics.txt")"
grep -q '^plinth_drift_corrections_total 1$' "$tmp/metrics.txt" || fail "no correction counted: $(grep drift "$tmp/metrics.txt")"
grep -q '^plinth_drift_checks_total [1-9]' "$tmp/metrics.txt" || fail "no drift check counted"
if command -v promtool >/dev/null; then
  promtool check metrics <"$tmp/metrics.txt" >"$tmp/promtool.txt" 2>&1 ||
    fail "promtool check metrics rejected /metrics: $(cat "$tmp/promtool.txt")"
fi

# A broken configuration: the task's error names the place; the controller stays up.
printf 'marker "broken" {\n  path = \n}\n' >"$d/broken.plinth"
# (The alert task reports it too, at its next pass: wait for the drift task's line.)
wait_for "'$plinth' status '$d' | grep -q '^drift: error: .*broken.plinth:3:1'" 15 ||
  fail "the broken configuration is not reported: $("$plinth" status "$d" --json 2>&1)"
curl -sf "http://127.0.0.1:$port/healthz" >/dev/null || fail "the controller is not healthy with a broken configuration"
"$plinth" status "$d" >"$tmp/status.txt" 2>&1 || fail "plinth status exited non-zero: $(cat "$tmp/status.txt")"
grep -q '^drift: error: the configuration has errors: .*broken.plinth:3:1: ' "$tmp/status.txt" ||
  fail "plinth status has no drift error line: $(cat "$tmp/status.txt")"
rm "$d/broken.plinth"
wait_for "'$plinth' status '$d' --json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)[\"drift\"][\"last_error\"] == \"\" else 1)'" 15 ||
  fail "the drift error did not clear once the configuration was fixed"
grep -q secret-edit "$d/.plinth/default/controller/status.json" && fail "status.json quotes a drifted value"
echo "drift-test: ok"
