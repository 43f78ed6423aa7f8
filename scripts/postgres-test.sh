#!/usr/bin/env bash
# End-to-end checks of the PostgreSQL state backend (docs/state.md,
# "Backends"), against a throwaway PostgreSQL 15 server that
# tests/fixtures/postgres.sh starts on 127.0.0.1 (as the postgres user) and
# the trap stops, also on failure:
#  - the unit tests of the backend (PostgresStateTest: journal, isolation,
#    append-only history, lease and fence, concurrent writers, encryption);
#  - plan, apply, history, state and workspace commands with --backend and
#    with PLINTH_BACKEND; nothing is written to DIR/.plinth/<ws>/state.db;
#    workspace delete drops the workspace's schema;
#  - a lock held from another machine refuses a plan naming the holder, and
#    --lock-timeout waits until it is released;
#  - a wrong password is refused and never printed;
#  - the configuration's `backend "postgres"` block is used when neither
#    --backend nor PLINTH_BACKEND is set; a password in it is refused;
#  - `plinth state migrate` PostgreSQL -> SQLite -> PostgreSQL with counts and
#    digests compared; the old copies refuse to open;
#  - two controllers on two machines' directories (sharing the data, as a
#    shared disk would) syncing one git branch into one PostgreSQL workspace:
#    one leads (the lease is in PostgreSQL), the other stands by; the leader
#    is killed, the other takes over, and no commit is applied twice;
#  - the crash harness (scripts/crash-test.sh) with the same trials as on
#    SQLite: every kill converges with no orphan.
# Usage: scripts/postgres-test.sh [PLINTH] [CRASH_TRIALS]   (defaults: build/plinth, 50)
set -euo pipefail
cd "$(dirname "$0")/.."
plinth=$(realpath "${1:-build/plinth}")
trials=${2:-${CRASH_TRIALS:-50}}
unit="$(dirname "$plinth")/tests/plinth_unit_tests"
. tests/fixtures/lib.sh
. tests/fixtures/postgres.sh
tmp=$(mktemp -d)
pids=()
cleanup() {
  if [ "${#pids[@]}" -gt 0 ]; then stop_pids 5 "${pids[@]}"; fi
  pg_fixture_stop
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "postgres-test: $*" >&2
  exit 1
}
pg_fixture_start
url=$PLINTH_TEST_PG_URL
start=$SECONDS

# 1. The backend's unit tests against this server.
"$unit" --gtest_filter='Postgres*' --gtest_brief=1 >"$tmp/unit.txt" 2>&1 ||
  fail "unit tests failed: $(tail -30 "$tmp/unit.txt")"
grep -q "PASSED.* 12 tests" "$tmp/unit.txt" || fail "the unit tests did not all run: $(tail -5 "$tmp/unit.txt")"

# 2. The quickstart with --backend: no state file, history and state commands read PostgreSQL.
cp -r examples/quickstart "$tmp/q"
rm -rf "$tmp/q/.plinth"
"$plinth" apply --auto-approve --backend="$url" "$tmp/q" >"$tmp/apply.txt" 2>&1 || fail "apply failed: $(cat "$tmp/apply.txt")"
grep -q "Apply complete: 5 changed" "$tmp/apply.txt" || fail "apply: $(tail -3 "$tmp/apply.txt")"
[ ! -e "$tmp/q/.plinth/default/state.db" ] || fail "a state file was written beside the PostgreSQL state"
PLINTH_BACKEND=$url "$plinth" plan --detailed-exitcode "$tmp/q" >/dev/null 2>&1 || fail "the plan after apply is not empty"
"$plinth" plan --detailed-exitcode "$tmp/q" >/dev/null 2>&1 && rc=0 || rc=$?
[ "$rc" = 2 ] || fail "without the backend the plan should create everything again (exit 2), got $rc"
(cd "$tmp/q" && "$plinth" history --backend="$url") | grep -q "apply" || fail "history shows no apply"
[ "$("$plinth" state list --backend="$url" --dir="$tmp/q" | wc -l)" = 5 ] || fail "state list does not show 5 resources"
"$plinth" workspace list --backend="$url" --dir="$tmp/q" | grep -q "default" || fail "workspace list misses default"
psql -qAt "$url" -c "select count(*) from plinth_default.history" | grep -qx 5 || fail "the history rows are not in plinth_default"
"$plinth" workspace new staging --backend="$url" --dir="$tmp/q" >/dev/null 2>&1 || fail "workspace new failed"
psql -qAt "$url" -c "select 1 from pg_namespace where nspname = 'plinth_staging'" | grep -qx 1 || fail "no schema plinth_staging"
"$plinth" workspace select default --backend="$url" --dir="$tmp/q" >/dev/null 2>&1 || fail "workspace select failed"
"$plinth" workspace delete staging --backend="$url" --dir="$tmp/q" >"$tmp/del.txt" 2>&1 || fail "workspace delete failed: $(cat "$tmp/del.txt")"
[ -z "$(psql -qAt "$url" -c "select 1 from pg_namespace where nspname = 'plinth_staging'")" ] ||
  fail "workspace delete left the schema plinth_staging"

# A lock held from another machine: refused naming it; --lock-timeout waits for its release.
lock_row="insert into plinth_default.lock values (1, 'feedc0de', 4242, 'ci-runner-9', 'apply', 0, 'b', 's',
  'another-machine', 'pid:[1]', (extract(epoch from now()) * 1000)::bigint + 60000)"
psql -qAt "$url" -c "$lock_row" >/dev/null || fail "cannot write the lock row"
"$plinth" plan --backend="$url" "$tmp/q" >"$tmp/locked.txt" 2>&1 && fail "a plan ran while the workspace was locked"
grep -q "locked by pid 4242 on ci-runner-9 (apply" "$tmp/locked.txt" || fail "the refusal does not name the holder: $(cat "$tmp/locked.txt")"
grep -q "lease" "$tmp/locked.txt" || fail "the refusal does not mention the lease: $(cat "$tmp/locked.txt")"
(sleep 2 && psql -qAt "$url" -c "delete from plinth_default.lock" >/dev/null) &
"$plinth" plan --lock-timeout=20s --backend="$url" "$tmp/q" >"$tmp/waited.txt" 2>&1 ||
  fail "plan --lock-timeout did not get the lock once it was released: $(cat "$tmp/waited.txt")"
wait
grep -q "waiting up to 20s for the workspace lock: .*ci-runner-9" "$tmp/waited.txt" || fail "no waiting line: $(cat "$tmp/waited.txt")"

# 3. A wrong password: refused, never printed.
if PGPASSWORD= "$plinth" plan --backend="postgresql://plinth:not-the-Password-42@127.0.0.1:$PLINTH_TEST_PG_PORT/plinth" \
  "$tmp/q" >"$tmp/wrong.txt" 2>&1; then
  fail "a wrong password was accepted"
fi
grep -q "password authentication failed" "$tmp/wrong.txt" || fail "the refusal does not say why: $(cat "$tmp/wrong.txt")"
! grep -q "not-the-Password-42" "$tmp/wrong.txt" || fail "the password was printed: $(cat "$tmp/wrong.txt")"
grep -q "plinth:\*\*\*@127.0.0.1" "$tmp/wrong.txt" || fail "the URL is not shown redacted: $(cat "$tmp/wrong.txt")"

# 4. state migrate: PostgreSQL -> SQLite -> PostgreSQL (another prefix), digests compared.
"$plinth" state migrate --backend="$url" --dir="$tmp/q" --to=sqlite >"$tmp/m1.txt" 2>&1 ||
  fail "migrate to sqlite failed: $(cat "$tmp/m1.txt")"
d1=$(sed -n 's/.*digest \([0-9a-f]*\) on both sides.*/\1/p' "$tmp/m1.txt")
[ -n "$d1" ] || fail "migrate printed no digest: $(cat "$tmp/m1.txt")"
[ -f "$tmp/q/.plinth/default/state.db" ] || fail "migrate wrote no state file"
"$plinth" plan --detailed-exitcode "$tmp/q" >/dev/null 2>&1 || fail "the migrated SQLite state does not plan empty"
"$plinth" plan --backend="$url" "$tmp/q" >"$tmp/old.txt" 2>&1 && fail "the migrated-away PostgreSQL copy still opens"
grep -q "was moved to .*state.db by plinth state migrate" "$tmp/old.txt" || fail "the old copy does not say where: $(cat "$tmp/old.txt")"
"$plinth" state migrate --dir="$tmp/q" --to="$url?schema=moved" >"$tmp/m2.txt" 2>&1 ||
  fail "migrate to PostgreSQL failed: $(cat "$tmp/m2.txt")"
grep -q "digest $d1 on both sides" "$tmp/m2.txt" || fail "the digest changed across two moves: $(cat "$tmp/m2.txt")"
"$plinth" plan --detailed-exitcode --backend="$url?schema=moved" "$tmp/q" >/dev/null 2>&1 ||
  fail "the state moved back to PostgreSQL does not plan empty"
"$plinth" destroy --auto-approve --backend="$url?schema=moved" "$tmp/q" >/dev/null 2>&1 || fail "destroy failed"

# The configuration's backend block: used when neither --backend nor PLINTH_BACKEND is set.
mkdir -p "$tmp/blk"
cat >"$tmp/blk/main.plinth" <<PL
backend "postgres" {
  url    = "postgresql://plinth@127.0.0.1:$PLINTH_TEST_PG_PORT/plinth"
  schema = "blk"
}

marker "a" {
  path    = "m/a"
  content = "x"
}
PL
"$plinth" apply --auto-approve "$tmp/blk" >"$tmp/blk.txt" 2>&1 || fail "apply with a backend block failed: $(cat "$tmp/blk.txt")"
[ ! -e "$tmp/blk/.plinth/default/state.db" ] || fail "the backend block was ignored: a state file was written"
psql -qAt "$url" -c "select count(*) from blk_default.history" | grep -qx 1 || fail "the history is not in blk_default"
(cd "$tmp/blk" && "$plinth" state list) | grep -qx "marker.a" || fail "state list does not read the block's backend"
sed -i "s|plinth@127|plinth:hunter2-in-git@127|" "$tmp/blk/main.plinth"
"$plinth" plan "$tmp/blk" >"$tmp/blk.txt" 2>&1 && fail "a password in the backend block was accepted"
grep -q "main.plinth:2:12: the backend's url holds a password" "$tmp/blk.txt" || fail "no located error: $(cat "$tmp/blk.txt")"
! grep -q "hunter2-in-git" "$tmp/blk.txt" || fail "the password was printed: $(cat "$tmp/blk.txt")"
echo "postgres-test: CLI, backend block, redaction and migrate checks passed ($((SECONDS - start)) s)"

# 5. Two controllers, two machines' directories, one PostgreSQL workspace.
export GIT_AUTHOR_NAME="Ada Lovelace" GIT_AUTHOR_EMAIL=ada@example.org
export GIT_COMMITTER_NAME="Ada Lovelace" GIT_COMMITTER_EMAIL=ada@example.org
work="$tmp/work"
bare="$tmp/infra.git"
mkdir -p "$work/envs/prod" "$tmp/a" "$tmp/b/.plinth/default"
git init -q --bare -b main "$bare"
git -C "$work" init -q -b main
set_content() { printf 'marker "inner" {\n  path    = "m/inner"\n  content = "%s"\n}\n' "$1" >"$work/envs/prod/main.plinth"; }
push() { git -C "$work" add -A && git -C "$work" commit -qm "$1" && git -C "$work" push -q "$bare" HEAD:main; }
set_content c1
push "Prod: c1"
export PLINTH_BACKEND="$url?schema=ctl"
# The data both machines reach (a shared disk): b's data is a's.
mkdir -p "$tmp/a/.plinth/default/data"
ln -s "$tmp/a/.plinth/default/data" "$tmp/b/.plinth/default/data"
data="$tmp/a/.plinth/default/data/m/inner"
start_controller() {  # NAME: a controller in $tmp/NAME
  "$plinth" controller --git="file://$bare@main" --dir="$tmp/$1" --interval=300ms --lease-ttl=3s \
    --drift-interval=0 --auto-apply --sync-interval=1s envs/prod >"$tmp/$1.log" 2>&1 &
  pids+=($!)
  wait_for "grep -q 'listening on' '$tmp/$1.log'" 20 || fail "controller $1 did not start: $(cat "$tmp/$1.log")"
}
holder_pid() { psql -qAt "$url" -c "select holder_pid from ctl_default.lease where name = 'controller' and expires_at_ms > extract(epoch from now()) * 1000"; }
start_controller a
wait_for '[ "$(cat "$data" 2>/dev/null)" = c1 ]' 30 || fail "controller a did not apply c1: $(tail -5 "$tmp/a.log")"
leader=${pids[-1]}
start_controller b
standby=${pids[-1]}
sleep 2
[ "$(cat "$data")" = c1 ] || fail "the marker changed while both controllers ran"
[ "$(holder_pid)" = "$leader" ] || fail "the lease in PostgreSQL is held by '$(holder_pid)', not the first controller ($leader)"
kill -9 "$leader"
{ wait "$leader"; } 2>/dev/null || true
set_content c2
push "Prod: c2"
c2=$(git -C "$work" rev-parse HEAD)
wait_for '[ "$(cat "$data")" = c2 ]' 30 || fail "controller b did not take over and apply c2: $(tail -5 "$tmp/b.log")"
[ "$(holder_pid)" = "$standby" ] || fail "the lease is held by '$(holder_pid)', not the standby ($standby)"
c1=$(git -C "$work" rev-parse HEAD~1)
sleep 2  # a further sync round of b must not apply anything again
applied_once "$plinth" "$tmp/b" "$c1" "$c2" || fail "a commit was applied twice (or not at all) across the takeover"
stop_pids 5 "${pids[@]}"
pids=()
unset PLINTH_BACKEND
echo "postgres-test: two controllers on one PostgreSQL workspace: the standby took over, each commit applied once ($((SECONDS - start)) s)"

# 6. The crash harness against PostgreSQL.
CRASH_BACKEND=$url scripts/crash-test.sh "$plinth" "$trials"
echo "postgres-test: all checks passed ($((SECONDS - start)) s)"
