#!/usr/bin/env bash
# End-to-end checks of configurations from git (docs/gitops.md): a bare
# repository made here with `git`, holding envs/prod (which calls a module
# outside it, ../../modules/m) and a syntax error on a branch. `plinth plan
# and apply --git=REPO@REF envs/prod` read the commit's tree with no
# checkout, from a local path and from a file:// remote (through the bare
# cache); the state lives in the workspace directory (--dir), never in the
# tree; `plinth history` names the commit of each apply (text and JSON); a
# new commit is applied, a revert brings the old content back, a force-push
# is followed; a saved plan from git applies; a missing ref, a missing path
# and a tree with a syntax error are refused with nothing applied; a
# password in a URL is never printed.
# Pull-request plans (--base/--head) print Markdown under a size budget,
# write their artifacts and exit 2 (changes), 4 (denied) or 1 (errors); the
# example pre-commit hook (examples/ci/) refuses unformatted and invalid files.
# Then the controller (`plinth controller --git=file://REPO@main`): a push
# and a signed webhook apply the commit (the commit-to-applied time is
# printed); wrong, missing and replayed signatures and another branch's push
# are refused or ignored; a commit a deny policy refuses and one that does
# not parse are never applied and the last good commit stays; without
# --auto-apply a plan waits for `plinth approve PLAN_ID`; a controller with
# no webhook picks a commit up by polling; when the leader of two is killed
# the standby applies the next commit, and no commit is applied twice; drift
# is judged against the applied tree and its correction waits for approval.
# Controllers listen on 127.0.0.1
# only and are stopped by the trap, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
plinth=$(realpath "${1:-build/plinth}")
. tests/fixtures/lib.sh
command -v git >/dev/null || { echo "gitops-test: git is not installed" >&2; exit 1; }
tmp=$(mktemp -d)
pids=()
sink_pid=
cleanup() {
  if [ "${#pids[@]}" -gt 0 ]; then stop_pids 5 "${pids[@]}"; fi
  if [ -n "$sink_pid" ]; then stop_pids 2 "$sink_pid"; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "gitops-test: $*" >&2
  [ -f "$tmp/ctl.log" ] && { echo "--- controller log" >&2; tail -20 "$tmp/ctl.log" >&2; }
  exit 1
}
export GIT_AUTHOR_NAME="Ada Lovelace" GIT_AUTHOR_EMAIL=ada@example.org
export GIT_COMMITTER_NAME="Ada Lovelace" GIT_COMMITTER_EMAIL=ada@example.org
work="$tmp/work"   # a developer's clone
bare="$tmp/infra.git"
home="$tmp/home"   # where the workspace lives
mkdir -p "$work/envs/prod" "$work/modules/m" "$home"
git init -q --bare -b main "$bare"
git -C "$work" init -q -b main
cat >"$work/modules/m/main.plinth" <<'PL'
variable "content" {
  type = string
}

marker "inner" {
  path    = "m/inner"
  content = var.content
}
PL
cat >"$work/envs/prod/main.plinth" <<'PL'
module "m" {
  source  = "../../modules/m"
  content = "v1"
}
PL
git -C "$work" add -A && git -C "$work" commit -qm "Prod: first marker"
git -C "$work" push -q "$bare" HEAD:main
first=$(git -C "$work" rev-parse HEAD)
data="$home/.plinth/default/data/m/inner"

# 1. Plan and apply from the bare repository by path; state in --dir.
"$plinth" plan --git="$bare@main" --dir="$home" envs/prod >"$tmp/plan.txt" 2>"$tmp/plan.err" ||
  fail "plan --git failed: $(cat "$tmp/plan.err")"
grep -q "Plan: 1 to create" "$tmp/plan.txt" || fail "plan: $(cat "$tmp/plan.txt")"
grep -q "commit ${first:0:12} by Ada Lovelace" "$tmp/plan.err" || fail "plan names no commit: $(cat "$tmp/plan.err")"
"$plinth" apply --auto-approve --git="$bare@main" --dir="$home" envs/prod >"$tmp/apply.txt" 2>&1 ||
  fail "apply --git failed: $(cat "$tmp/apply.txt")"
[ "$(cat "$data")" = v1 ] || fail "the marker holds '$(cat "$data" 2>/dev/null)', not v1"
[ -f "$home/.plinth/default/state.db" ] || fail "no state in the workspace directory"
[ ! -e "$work/envs/prod/.plinth" ] && [ ! -e "$bare/.plinth" ] || fail "a state was written into the repository"
(cd "$home" && "$plinth" history) >"$tmp/history.txt" || fail "history failed"
grep -q "from $bare@main path envs/prod, commit ${first:0:12} by Ada Lovelace <ada@example.org>" "$tmp/history.txt" ||
  fail "history names no commit: $(cat "$tmp/history.txt")"
"$plinth" history --json --dir="$home" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
applies = [e for e in doc["entries"] if e["kind"] == "apply" and e["changes"]]
src = applies[-1]["source"]
assert src["kind"] == "git" and src["commit"] == sys.argv[1] and src["path"] == "envs/prod", src
assert src["summary"] == "Prod: first marker" and src["author"] == "Ada Lovelace", src
' "$first" || fail "history --json has no source"
link=$(readlink "$home/.plinth/default/git/tree")
[ -f "$link/envs/prod/main.plinth" ] || fail "the tree link points at '$link'"

# 2. A new commit through a file:// remote (the bare cache): applied, recorded.
sed -i 's/"v1"/"v2"/' "$work/envs/prod/main.plinth"
git -C "$work" commit -qam "Prod: v2"
git -C "$work" push -q "$bare" HEAD:main
second=$(git -C "$work" rev-parse HEAD)
"$plinth" apply --auto-approve --git="file://$bare@main" --dir="$home" envs/prod >"$tmp/apply2.txt" 2>&1 ||
  fail "apply from file:// failed: $(cat "$tmp/apply2.txt")"
[ "$(cat "$data")" = v2 ] || fail "the marker holds '$(cat "$data")', not v2"
ls "$home/.plinth/.git-cache/remotes/"*.git/HEAD >/dev/null || fail "no bare cache for the remote"
"$plinth" history --dir="$home" | grep -q "commit ${second:0:12} by Ada Lovelace" || fail "history misses the second commit"
# Applying the same commit again changes nothing.
"$plinth" plan --detailed-exitcode --git="file://$bare@main" --dir="$home" envs/prod >/dev/null 2>&1 ||
  fail "the applied commit still plans changes"

# 3. A revert brings v1 back; a force-push of another history is followed.
git -C "$work" revert --no-edit HEAD >/dev/null
git -C "$work" push -q "$bare" HEAD:main
"$plinth" apply --auto-approve --git="file://$bare" --dir="$home" envs/prod >/dev/null 2>&1 || fail "apply of the revert failed"
[ "$(cat "$data")" = v1 ] || fail "the revert left '$(cat "$data")'"
git -C "$work" reset -q --hard "$first"
sed -i 's/"v1"/"forced"/' "$work/envs/prod/main.plinth"
git -C "$work" commit -qam "Prod: rewritten"
git -C "$work" push -q -f "$bare" HEAD:main
"$plinth" apply --auto-approve --git="file://$bare@main" --dir="$home" envs/prod >/dev/null 2>&1 ||
  fail "apply after a force-push failed"
[ "$(cat "$data")" = forced ] || fail "the force-push was not followed: '$(cat "$data")'"

# 4. A saved plan from git applies from its tree, in its workspace.
sed -i 's/"forced"/"saved"/' "$work/envs/prod/main.plinth"
git -C "$work" commit -qam "Prod: saved"
git -C "$work" push -q "$bare" HEAD:main
"$plinth" plan --git="$bare@main" --dir="$home" --out="$tmp/release.plan" envs/prod >/dev/null 2>&1 ||
  fail "plan --out from git failed"
(cd "$tmp" && "$plinth" apply "$tmp/release.plan") >"$tmp/apply-saved.txt" 2>&1 ||
  fail "apply of the saved plan failed: $(cat "$tmp/apply-saved.txt")"
[ "$(cat "$data")" = saved ] || fail "the saved plan left '$(cat "$data")'"
"$plinth" history --dir="$home" | grep -q ": Prod: saved" || fail "the saved plan's apply names no commit"

# 5. Bad input: nothing applied, a clear message, exit 1.
expect_refused() {  # WHAT PATTERN ARGS...
  local what=$1 pattern=$2
  shift 2
  local rc=0
  "$plinth" "$@" >"$tmp/bad.out" 2>"$tmp/bad.err" || rc=$?
  [ "$rc" -eq 1 ] || fail "$what: exit $rc, not 1: $(cat "$tmp/bad.err")"
  grep -q -- "$pattern" "$tmp/bad.err" || fail "$what: no '$pattern' in: $(cat "$tmp/bad.err")"
  [ "$(cat "$data")" = saved ] || fail "$what changed the marker"
}
expect_refused "a missing ref" "no ref 'nope' in" apply --auto-approve --git="$bare@nope" --dir="$home" envs/prod
expect_refused "a missing path" "no directory or .plinth file 'envs/qa'" \
  apply --auto-approve --git="$bare@main" --dir="$home" envs/qa
expect_refused "a path out of the tree" "a path inside the repository" \
  plan --git="$bare@main" --dir="$home" ../../etc
expect_refused "a missing repository" "no git repository at $tmp/none" plan --git="$tmp/none" --dir="$home"
git -C "$work" checkout -q -b broken
printf 'module "m" {\n  source = \n' >"$work/envs/prod/main.plinth"
git -C "$work" commit -qam "Broken"
git -C "$work" push -q "$bare" HEAD:broken
expect_refused "a tree with a syntax error" "^envs/prod/main.plinth:3:1: error" \
  apply --auto-approve --git="$bare@broken" --dir="$home" envs/prod
expect_refused "a password in a URL" "https://ci:\*\*\*@127.0.0.1:1/infra.git" \
  plan --git="https://ci:hunter2-secret@127.0.0.1:1/infra.git" --dir="$home"
if grep -q hunter2 "$tmp/bad.err" "$tmp/bad.out"; then fail "the URL's password was printed"; fi
"$plinth" validate --git="$bare@main" envs/prod >/dev/null 2>&1 || fail "validate --git failed"
git -C "$work" checkout -q main

# 6. Pull-request plans: Markdown for a comment, artifacts, exit codes, a size budget.
pr() {  # BRANCH ARGS...: the pull request's plan; its exit code in $pr_rc
  local branch=$1
  shift
  pr_rc=0
  (cd "$tmp" && "$plinth" plan --git="file://$bare" --base=main --head="$branch" --dir="$home" \
    --artifacts="$tmp/artifacts-$branch" "$@" envs/prod) >"$tmp/pr-$branch.md" 2>"$tmp/pr-$branch.err" || pr_rc=$?
}
git -C "$work" checkout -q -b feature main
sed -i 's/"saved"/"from-the-branch"/' "$work/envs/prod/main.plinth"
cat >>"$work/envs/prod/main.plinth" <<'PL'

marker "extra" {
  count   = 30
  path    = "m/extra-${count.index}"
  content = "x"
}
PL
git -C "$work" commit -qam "Feature: extra markers"
git -C "$work" push -q "$bare" HEAD:feature
pr feature --detailed-exitcode
[ "$pr_rc" -eq 2 ] || fail "a pull request with changes exited $pr_rc: $(cat "$tmp/pr-feature.err")"
grep -q '^\*\*30 to create, 1 to update, 0 to replace, 0 to delete\*\*' "$tmp/pr-feature.md" ||
  fail "the summary has no counts: $(cat "$tmp/pr-feature.md")"
grep -q '| update | `module.m.marker.inner` | changes content | `[0-9a-f]*` |' "$tmp/pr-feature.md" || fail "the summary misses the update"
grep -q 'Feature: extra markers (Ada Lovelace)' "$tmp/pr-feature.md" || fail "the summary misses the commit"
for f in plan.txt plan.json summary.md; do [ -s "$tmp/artifacts-feature/$f" ] || fail "no artifact $f"; done
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/artifacts-feature/plan.json" || fail "plan.json is not JSON"
cmp -s "$tmp/pr-feature.md" "$tmp/artifacts-feature/summary.md" || fail "summary.md differs from what was printed"
[ "$(cat "$data")" = saved ] || fail "a pull request's plan changed the marker"
# Change provenance: each change names the commit behind it, also a removal.
feature_commit=$(git -C "$work" rev-parse --short=12 feature)
"$plinth" plan --git="$bare@feature" --dir="$home" envs/prod >"$tmp/prov.txt" 2>"$tmp/prov.err" || fail "plan of feature failed"
grep -A1 '^+ marker.extra\[29\]' "$tmp/prov.txt" | grep -q "caused by $feature_commit (Ada Lovelace): Feature: extra markers \[changed envs/prod/main.plinth:" ||
  fail "the create names no commit: $(head -20 "$tmp/prov.txt")"
grep -A1 '^~ module.m.marker.inner' "$tmp/prov.txt" | grep -q "caused by $feature_commit" ||
  fail "the update made at the module's call site names no commit: $(cat "$tmp/prov.txt")"
grep -q "^Provenance: 31 of 31 changes traced" "$tmp/prov.err" || fail "no provenance figures: $(cat "$tmp/prov.err")"
"$plinth" plan --json --git="$bare@feature" --dir="$home" envs/prod 2>/dev/null | python3 -c '
import json, sys
doc = json.load(sys.stdin)
c = [r for r in doc["resource_changes"] if r["address"] == "marker.extra[0]"][0]
assert c["caused_by"][0]["summary"] == "Feature: extra markers", c
' || fail "plan --json has no caused_by"
git -C "$work" checkout -q -b removal main
printf 'marker "other" {\n  path = "m/other"\n}\n' >"$work/envs/prod/main.plinth"
git -C "$work" commit -qam "Remove module m"
git -C "$work" push -q "$bare" HEAD:removal
removal_commit=$(git -C "$work" rev-parse --short=12 HEAD)
"$plinth" plan --git="$bare@removal" --dir="$home" envs/prod >"$tmp/prov.txt" 2>/dev/null || fail "plan of removal failed"
grep -A1 '^- module.m.marker.inner' "$tmp/prov.txt" |
  grep -q "caused by $removal_commit (Ada Lovelace): Remove module m \[removed module \"m\" from envs/prod/main.plinth\]" ||
  fail "the delete names no commit: $(cat "$tmp/prov.txt")"
git -C "$work" checkout -q feature
pr feature --summary-limit=1500
[ "$pr_rc" -eq 0 ] || fail "a pull request's plan exited $pr_rc without --detailed-exitcode"
[ "$(wc -c <"$tmp/pr-feature.md")" -le 1500 ] || fail "the summary is longer than its limit: $(wc -c <"$tmp/pr-feature.md")"
grep -q "more changes: the full plan is in" "$tmp/pr-feature.md" || fail "the cut summary does not point to the full plan"
git -C "$work" checkout -q -b denied main
cat >"$work/envs/prod/policy.plinth" <<'PL'
policy "no_forbidden_content" {
  for_all = marker
  require = self.content != "forbidden"
  message = "marker ${self.path} may not hold forbidden content"
}
PL
sed -i 's/"saved"/"forbidden"/' "$work/envs/prod/main.plinth"
git -C "$work" add -A && git -C "$work" commit -qm "Denied"
git -C "$work" push -q "$bare" HEAD:denied
pr denied
[ "$pr_rc" -eq 4 ] || fail "a denied pull request exited $pr_rc"
grep -q "Denied by policy" "$tmp/pr-denied.md" && grep -q "may not hold forbidden content" "$tmp/pr-denied.md" ||
  fail "the denied summary does not say why: $(cat "$tmp/pr-denied.md")"
pr broken
[ "$pr_rc" -eq 1 ] || fail "a broken pull request exited $pr_rc"
grep -q "The configuration has errors" "$tmp/pr-broken.md" && grep -q "envs/prod/main.plinth:3:1" "$tmp/pr-broken.md" ||
  fail "the broken summary does not locate the error: $(cat "$tmp/pr-broken.md")"
# As the example pipelines run it: in a CI checkout, --git=. against origin/main.
git clone -q "$bare" "$tmp/ci-checkout"
git -C "$tmp/ci-checkout" checkout -q feature
(cd "$tmp/ci-checkout" && "$plinth" plan --git=. --base=origin/main --head=HEAD --dir="$home" --lock=false \
  --artifacts="$tmp/ci-artifacts" envs/prod) >"$tmp/ci.md" 2>"$tmp/ci.err" || fail "the CI-style plan failed: $(cat "$tmp/ci.err")"
grep -q '30 to create' "$tmp/ci.md" || fail "the CI-style plan differs: $(cat "$tmp/ci.md")"
# The example git hook: an unformatted and an invalid staged file are refused, a good one committed.
hooked="$tmp/hooked"
git init -q -b main "$hooked"
cp examples/ci/pre-commit "$hooked/.git/hooks/pre-commit"
mkdir -p "$hooked/infra"
printf 'marker "a" {\npath = "m/a"\n}\n' >"$hooked/infra/main.plinth"
git -C "$hooked" add -A
if PLINTH="$plinth" git -C "$hooked" commit -qm "unformatted" 2>"$tmp/hook.err"; then fail "the hook let an unformatted file in"; fi
grep -q "not formatted" "$tmp/hook.err" || fail "the hook does not say why: $(cat "$tmp/hook.err")"
printf 'marker "a" {\n  path = \n' >"$hooked/infra/main.plinth"
git -C "$hooked" add -A
if PLINTH="$plinth" git -C "$hooked" commit -qm "invalid" 2>"$tmp/hook.err"; then fail "the hook let an invalid file in"; fi
grep -q "infra/main.plinth:3:1" "$tmp/hook.err" || fail "the hook does not locate the error: $(cat "$tmp/hook.err")"
printf 'marker "a" {\n  path = "m/a"\n}\n' >"$hooked/infra/main.plinth"
git -C "$hooked" add -A
PLINTH="$plinth" git -C "$hooked" commit -qm "good" 2>"$tmp/hook.err" || fail "the hook refused a good file: $(cat "$tmp/hook.err")"
git -C "$work" checkout -q main

# 7. The controller syncs from git: webhook, policies, bad commits, approval, polling.
command -v curl >/dev/null || fail "curl is not installed"
secret="$tmp/webhook.secret"
(umask 077 && printf 'a-webhook-secret-for-tests\n' >"$secret")
push() {  # MESSAGE: commit everything and push main
  git -C "$work" add -A && git -C "$work" commit -qm "$1" && git -C "$work" push -q "$bare" HEAD:main
}
set_content() { sed -i "s/content = \".*\"/content = \"$1\"/" "$work/envs/prod/main.plinth"; }
cat >"$work/envs/prod/main.plinth" <<'PL'
module "m" {
  source  = "../../modules/m"
  content = "c1"
}
PL
# Notifications: the git alerts go to the configuration's receiver.
hook_port=$(free_port)
cat >"$work/envs/prod/notify.plinth" <<PL
receiver "ops" {
  url = "http://127.0.0.1:$hook_port/hook"
}

notification {
  receiver            = "ops"
  group_by            = ["alertname"]
  group_wait          = 0s
  group_interval      = 1s
  repeat_interval     = 1h
  evaluation_interval = 1s
}
PL
python3 - "$hook_port" "$tmp/hooks.jsonl" <<'PY' >"$tmp/sink.log" 2>&1 &
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port, out = int(sys.argv[1]), sys.argv[2]
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        doc = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        with open(out, "a") as f:
            for a in doc["alerts"]:
                f.write(json.dumps([a["labels"]["alertname"], a["status"], a["annotations"].get("summary", "")]) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
sink_pid=$!
touch "$tmp/hooks.jsonl"
push "Prod: c1"
start_controller() {  # LOG ARGS...: a controller syncing envs/prod of the bare repository
  local log=$1
  shift
  "$plinth" controller --git="file://$bare@main" --dir="$home" --interval=300ms --lease-ttl=3s \
    --drift-interval=0 "$@" envs/prod >"$log" 2>&1 &
  pids+=($!)
  wait_for "grep -q 'listening on' '$log'" 20 || fail "the controller did not start: $(cat "$log")"
  listen=$(sed -n 's/.*listening on \([0-9.:]*\);.*/\1/p' "$log" | head -1)
}
git_status() { "$plinth" status --json --dir="$home" | python3 -c "import json,sys; print(json.load(sys.stdin)['git'][sys.argv[1]])" "$1"; }
sign() { printf 'sha256=%s' "$(printf '%s' "$1" | openssl dgst -sha256 -hmac "a-webhook-secret-for-tests" -r | cut -d' ' -f1)"; }
hook() {  # DELIVERY BODY [SIGNATURE]: POST /hooks/git, prints the status code
  local sig=${3-$(sign "$2")}
  curl -s -o "$tmp/hook.out" -w '%{http_code}' -X POST "http://$listen/hooks/git" \
    -H "X-GitHub-Delivery: $1" ${sig:+-H "X-Hub-Signature-256: $sig"} --data-binary "$2"
}
start_controller "$tmp/ctl.log" --auto-apply --sync-interval=1h --webhook-secret-file="$secret"
wait_for '[ "$(cat "$data")" = c1 ]' 20 || fail "the controller did not apply c1 at start"
set_content c2
push "Prod: c2"
body='{"ref":"refs/heads/main","after":"'"$(git -C "$work" rev-parse HEAD)"'"}'
t0=$(date +%s.%N)
code=$(hook d-1 "$body")
[ "$code" = 202 ] || fail "the webhook got $code: $(cat "$tmp/hook.out")"
wait_for '[ "$(cat "$data")" = c2 ]' 20 || fail "the webhook did not apply c2"
t1=$(date +%s.%N)
echo "gitops-test: commit-to-applied through the webhook: $(python3 -c "print(f'{$t1 - $t0:.2f}')") s"
[ "$(hook d-1 "$body")" = 409 ] || fail "a replayed delivery was not refused"
[ "$(hook d-2 "$body" "sha256=$(printf '0%.0s' {1..64})")" = 401 ] || fail "a wrong signature was not refused"
[ "$(hook d-3 "$body" "")" = 401 ] || fail "a missing signature was not refused"
[ "$(hook d-4 '{"ref":"refs/heads/feature"}')" = 202 ] && grep -q ignored "$tmp/hook.out" ||
  fail "a push to another branch was not ignored: $(cat "$tmp/hook.out")"
"$plinth" history --dir="$home" | grep -q "git-sync" || fail "history has no git-sync action"

# A commit a deny policy refuses: never applied, the notification says why.
cat >"$work/envs/prod/policy.plinth" <<'PL'
policy "no_forbidden_content" {
  for_all = marker
  require = self.content != "forbidden"
  message = "marker ${self.path} may not hold forbidden content"
}
PL
set_content forbidden
push "Prod: forbidden"
[ "$(hook d-5 "$body")" = 202 ] || fail "the webhook for the denied commit failed"
wait_for '[ "$(git_status outcome)" = denied ]' 20 || fail "the denied commit's outcome is $(git_status outcome)"
git_status detail | grep -q "may not hold forbidden content" || fail "the denial does not say why: $(git_status detail)"
[ "$(cat "$data")" = c2 ] || fail "a denied commit was applied"
grep -q "denied commit" "$tmp/ctl.log" || fail "the controller's log does not record the denial"
wait_for 'grep -q "\"GitSyncFailing\", \"firing\"" "$tmp/hooks.jsonl"' 20 ||
  fail "no GitSyncFailing notification: $(cat "$tmp/hooks.jsonl")"
# A commit that does not parse: refused, located; the last good commit stays.
printf 'module "m" {\n  source = \n' >"$work/envs/prod/main.plinth"
push "Prod: broken"
[ "$(hook d-6 "$body")" = 202 ] || fail "the webhook for the broken commit failed"
wait_for '[ "$(git_status outcome)" = invalid ]' 20 || fail "the broken commit's outcome is $(git_status outcome)"
git_status detail | grep -q "^envs/prod/main.plinth:3:1" || fail "the error is not located: $(git_status detail)"
[ "$(cat "$data")" = c2 ] || fail "a broken commit changed the marker"
curl -sf "http://$listen/healthz" >/dev/null || fail "the controller is not healthy after a bad commit"
curl -sf "http://$listen/metrics" | grep -q 'plinth_git_syncs_total{outcome="invalid"} 1' || fail "metrics miss the invalid sync"
stop_pids 5 "${pids[@]}"
pids=()

# Without --auto-apply the plan waits for approval.
git -C "$work" rm -q envs/prod/policy.plinth
cat >"$work/envs/prod/main.plinth" <<'PL'
module "m" {
  source  = "../../modules/m"
  content = "approved"
}
PL
push "Prod: needs approval"
start_controller "$tmp/ctl2.log" --sync-interval=1h
wait_for '[ "$(git_status outcome)" = waiting ]' 20 || fail "no plan waits: $(git_status outcome) $(git_status detail)"
plan_id=$(git_status detail | sed -n 's/^plan \([0-9a-f]*\) .*/\1/p')
[ -n "$plan_id" ] || fail "no plan id in: $(git_status detail)"
plan_file="$home/.plinth/default/controller/git-plan.txt"
grep -q "^Plan $plan_id of commit" "$plan_file" && grep -q "caused by .* (Ada Lovelace): Prod: needs approval" "$plan_file" ||
  fail "the plan to review is not written with its provenance: $(cat "$plan_file" 2>/dev/null)"
[ "$(cat "$data")" = c2 ] || fail "a plan waiting for approval was applied"
wait_for 'grep -q "\"GitPlanWaiting\", \"firing\"" "$tmp/hooks.jsonl"' 20 ||
  fail "no GitPlanWaiting notification: $(cat "$tmp/hooks.jsonl")"
if "$plinth" approve 0000000000000000 --dir="$home" >"$tmp/approve.out" 2>&1; then fail "a wrong plan id was approved"; fi
grep -q "plan $plan_id does" "$tmp/approve.out" || fail "approve of a wrong id does not name the waiting one: $(cat "$tmp/approve.out")"
"$plinth" approve "$plan_id" --dir="$home" >/dev/null || fail "approve $plan_id failed"
wait_for '[ "$(cat "$data")" = approved ]' 20 || fail "the approved plan was not applied: $(git_status outcome) $(git_status detail)"
stop_pids 5 "${pids[@]}"
pids=()

# Polling alone (no webhook) picks up a new commit.
start_controller "$tmp/ctl3.log" --auto-apply --sync-interval=2s
wait_for '[ "$(git_status outcome)" = synced ]' 20 || fail "the approved commit is not in sync: $(git_status outcome)"
set_content polled
push "Prod: polled"
t0=$(date +%s.%N)
wait_for '[ "$(cat "$data")" = polled ]' 20 || fail "polling did not apply the commit"
t1=$(date +%s.%N)
echo "gitops-test: commit-to-applied by polling (--sync-interval=2s): $(python3 -c "print(f'{$t1 - $t0:.2f}')") s"
polled=$(git -C "$work" rev-parse HEAD)

# Two controllers on one workspace: the leader is killed, the standby takes
# over and applies the next commit; no commit is applied twice.
leader=${pids[-1]}
start_controller "$tmp/ctl4.log" --auto-apply --sync-interval=2s --webhook-secret-file="$secret"
[ "$(hook d-standby "$body")" = 202 ] && grep -q "stands by" "$tmp/hook.out" ||
  fail "a standby's webhook answer does not say it stands by: $(cat "$tmp/hook.out")"
kill -9 "$leader"
{ wait "$leader"; } 2>/dev/null || true
set_content takeover
push "Prod: takeover"
takeover=$(git -C "$work" rev-parse HEAD)
wait_for '[ "$(cat "$data")" = takeover ]' 30 || fail "the standby did not take over and apply: $(tail -5 "$tmp/ctl4.log")"
applied_once "$plinth" "$home" "$polled" "$takeover" || fail "a commit was applied twice (or not at all) across the takeover"
stop_pids 5 "${pids[@]}"
pids=()

# Drift under a controller syncing from git: judged against the applied
# commit's tree; without --auto-apply the correction waits for approval.
printf 'edited by hand' >"$data"
"$plinth" controller --git="file://$bare@main" --dir="$home" --once --drift-interval=1s envs/prod \
  >"$tmp/once.json" 2>"$tmp/once.err" || true
python3 - "$tmp/once.json" <<'PY' || fail "drift under git sync: $(cat "$tmp/once.json") $(tail -5 "$tmp/once.err")"
import json, sys
doc = json.load(open(sys.argv[1]))
drifted = {r["address"]: r for r in doc["drift"]["resources"]}
assert "content" in drifted["module.m.marker.inner"]["attributes"], drifted
assert doc["git"]["outcome"] == "waiting", doc["git"]
assert "update" in doc["git"]["waiting"]["counts"] or "1 to update" in doc["git"]["waiting"]["counts"], doc["git"]
PY
[ "$(cat "$data")" = "edited by hand" ] || fail "drift was corrected without approval"
echo "gitops-test: ok (plan/apply from a path and a file:// remote, history, revert, force-push, saved plan, bad input, pull-request plans, controller sync: webhook, policies, bad commits, approval, polling, takeover)"
