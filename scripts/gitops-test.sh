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
# password in a URL is never printed. Nothing listens on any address.
set -euo pipefail
cd "$(dirname "$0")/.."
plinth=$(realpath "${1:-build/plinth}")
. tests/fixtures/lib.sh
command -v git >/dev/null || { echo "gitops-test: git is not installed" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "gitops-test: $*" >&2
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
echo "gitops-test: ok (plan/apply from a path and a file:// remote, history, revert, force-push, saved plan, bad input)"
