#!/usr/bin/env bash
# End-to-end checks of config_file resources (docs/providers/local.md,
# "Configuration files") with the real binary: apply writes three files
# (content from a heredoc, mode, a validate command on the temp file before
# the swap, a reload command after it); they are edited, chmodded and
# removed outside Plinth; `plinth plan` shows the drift by attribute name and
# never prints the sensitive file's content (neither the configured secret
# nor what was typed into the file); `plinth controller --once` corrects the
# resource with drift = "correct" (its file written again and reload rerun)
# and only reports the others; a configuration the validator refuses fails
# the apply and leaves the old file; destroy removes the files, except the
# one with keep_on_destroy. No port is used (the controller runs --once).
#   scripts/config-file-test.sh build/plinth
set -euo pipefail
cd "$(dirname "$0")/.."
plinth=$(realpath "${1:-build/plinth}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "config-file-test: $*" >&2
  exit 1
}

d="$tmp/ws"
etc="$d/etc"
mkdir -p "$etc"
secret='s3cr3t-from-variable'
cat >"$d/main.plinth" <<'EOF'
variable "db_password" {
  type      = string
  sensitive = true
}

variable "port" {
  type    = number
  default = 8080
}

config_file "app" {
  path     = abspath("etc/app.conf")
  content  = <<EOT
listen ${var.port}
workers 4
EOT
  mode     = "0640"
  validate = ["/bin/sh", "-c", "grep -q '^listen [0-9][0-9]*$' \"$1\"", "sh", "{path}"]
  reload   = ["/bin/sh", "-c", "cp \"$1\" \"$2\"", "sh", abspath("etc/app.conf"), abspath("reloaded.txt")]
  drift    = "correct"
}

config_file "notes" {
  path    = abspath("etc/notes.conf")
  content = "written by plinth\n"
}

config_file "db" {
  path            = abspath("etc/db.conf")
  content         = "password = ${var.db_password}\n"
  mode            = "0600"
  keep_on_destroy = true
}
EOF
export PLINTH_VAR_db_password="$secret"

"$plinth" apply --auto-approve "$d" >"$tmp/apply.txt" 2>&1 || fail "apply failed: $(cat "$tmp/apply.txt")"
grep -q "$secret" "$tmp/apply.txt" && fail "apply printed the secret"
[ "$(cat "$etc/app.conf")" = "$(printf 'listen 8080\nworkers 4')" ] || fail "app.conf: $(cat "$etc/app.conf")"
[ "$(stat -c %a "$etc/app.conf")" = 640 ] || fail "app.conf mode is $(stat -c %a "$etc/app.conf")"
[ "$(stat -c %a "$etc/db.conf")" = 600 ] || fail "db.conf mode is $(stat -c %a "$etc/db.conf")"
[ "$(cat "$etc/db.conf")" = "password = $secret" ] || fail "db.conf does not hold the password"
cmp -s "$etc/app.conf" "$d/reloaded.txt" || fail "reload did not run after the swap"
ls -A "$etc" | grep -q '\.tmp$' && fail "a temp file was left in $etc"
for f in "$d"/.plinth/default/state*; do
  [ -f "$f" ] && grep -q "$secret" "$f" && fail "the state file $f holds the secret"
done

# Nothing changed: the plan is empty.
"$plinth" plan "$d" >"$tmp/plan0.txt" 2>&1 || fail "plan failed: $(cat "$tmp/plan0.txt")"
grep -q "changed outside Plinth" "$tmp/plan0.txt" && fail "drift without a change: $(cat "$tmp/plan0.txt")"

# Out of band: edit app.conf and notes.conf, edit and chmod db.conf.
rm "$d/reloaded.txt"
printf 'listen 9999\nworkers 64\n' >"$etc/app.conf"
printf 'edited by hand\n' >"$etc/notes.conf"
printf 'password = typed-by-hand\n' >"$etc/db.conf"
chmod 0644 "$etc/db.conf"

"$plinth" plan "$d" >"$tmp/plan.txt" 2>&1 || fail "plan failed: $(cat "$tmp/plan.txt")"
grep -q "config_file.app changed outside Plinth: content, content_digest" "$tmp/plan.txt" ||
  fail "the plan does not show app's drift: $(cat "$tmp/plan.txt")"
grep -q "config_file.notes changed outside Plinth" "$tmp/plan.txt" || fail "no drift for notes: $(cat "$tmp/plan.txt")"
grep -q "config_file.db changed outside Plinth: content, content_digest, mode" "$tmp/plan.txt" ||
  fail "the plan does not show db's drift: $(cat "$tmp/plan.txt")"
grep -q "workers 64" "$tmp/plan.txt" || fail "the plan does not show app's content on disk: $(cat "$tmp/plan.txt")"
grep -q -e "$secret" -e "typed-by-hand" "$tmp/plan.txt" && fail "the plan printed sensitive content: $(cat "$tmp/plan.txt")"

# The controller corrects app (drift = "correct"), reports notes and db.
"$plinth" controller "$d" --once --drift-interval=1s >"$tmp/once.json" 2>"$tmp/once.err" ||
  fail "controller --once failed: $(cat "$tmp/once.json" "$tmp/once.err")"
python3 - "$tmp/once.json" <<'EOF' || fail "drift status is wrong: $(cat "$tmp/once.json")"
import json, sys
s = json.load(open(sys.argv[1]))["drift"]
assert s["last_error"] == "" and s["skipped"] == "", s
r = {x["address"]: x for x in s["resources"]}
assert set(r) == {"config_file.app", "config_file.notes", "config_file.db"}, s
a, n, d = r["config_file.app"], r["config_file.notes"], r["config_file.db"]
assert a["correct_drift"] and a["corrected"] and a["error"] == "" and a["action"] == "update", s
assert not n["correct_drift"] and not n["corrected"] and n["action"] == "update", s
assert not d["correct_drift"] and not d["corrected"], s
assert s["corrections"] == 1, s
EOF
grep -q -e "$secret" -e "typed-by-hand" "$tmp/once.json" "$tmp/once.err" && fail "the controller printed sensitive content"
[ "$(cat "$etc/app.conf")" = "$(printf 'listen 8080\nworkers 4')" ] || fail "app.conf was not corrected: $(cat "$etc/app.conf")"
cmp -s "$etc/app.conf" "$d/reloaded.txt" || fail "the correction did not rerun reload"
[ "$(cat "$etc/notes.conf")" = "edited by hand" ] || fail "notes.conf (drift = report) was changed"
[ "$(cat "$etc/db.conf")" = "password = typed-by-hand" ] || fail "db.conf (drift = report) was changed"

# Removed outside Plinth: an update that writes it again, so corrected too.
rm "$etc/app.conf"
"$plinth" controller "$d" --once --drift-interval=1s >"$tmp/once2.json" 2>"$tmp/once2.err" ||
  fail "controller --once failed: $(cat "$tmp/once2.json" "$tmp/once2.err")"
[ -f "$etc/app.conf" ] || fail "the removed app.conf was not written again: $(cat "$tmp/once2.json")"

# apply puts the others back; the db's digest matches again afterwards.
"$plinth" apply --auto-approve "$d" >"$tmp/apply2.txt" 2>&1 || fail "apply failed: $(cat "$tmp/apply2.txt")"
[ "$(cat "$etc/db.conf")" = "password = $secret" ] || fail "apply did not restore db.conf"
[ "$(stat -c %a "$etc/db.conf")" = 600 ] || fail "apply did not restore db.conf's mode"
"$plinth" plan "$d" >"$tmp/plan2.txt" 2>&1 || fail "plan failed: $(cat "$tmp/plan2.txt")"
grep -q "changed outside Plinth" "$tmp/plan2.txt" && fail "drift after apply: $(cat "$tmp/plan2.txt")"

# Content the validator refuses: the apply fails and the old file stays.
sed -i 's/^listen \${var.port}$/listen on-port-${var.port}/' "$d/main.plinth"
grep -q 'listen on-port-' "$d/main.plinth" || fail "could not edit the configuration"
set +e
"$plinth" apply --auto-approve "$d" >"$tmp/apply3.txt" 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "apply succeeded with content the validator refuses: $(cat "$tmp/apply3.txt")"
grep -q "was not changed: the validate command '/bin/sh' exited with status 1" "$tmp/apply3.txt" ||
  fail "the failed validation is not explained: $(cat "$tmp/apply3.txt")"
[ "$(cat "$etc/app.conf")" = "$(printf 'listen 8080\nworkers 4')" ] || fail "the refused content replaced app.conf"
sed -i 's/^listen on-port-/listen /' "$d/main.plinth"

# Destroy removes the files, except the one kept on destroy.
"$plinth" destroy --auto-approve "$d" >"$tmp/destroy.txt" 2>&1 || fail "destroy failed: $(cat "$tmp/destroy.txt")"
[ -e "$etc/app.conf" ] && fail "destroy left app.conf"
[ -e "$etc/notes.conf" ] && fail "destroy left notes.conf"
[ -f "$etc/db.conf" ] || fail "destroy removed db.conf (keep_on_destroy)"
echo "config-file-test: ok"
