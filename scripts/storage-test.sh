#!/usr/bin/env bash
# End-to-end checks of local bucket storage through the CLI (docs/storage.md):
# objects and versions, grants, lifecycle with an injected clock, capacity
# alerts and metrics, backups with retention, the restore drill (byte-identical
# after the bucket is emptied), a damaged or missing repository, and destroy.
set -euo pipefail
cd "$(dirname "$0")/.."
plinth=$(realpath "${1:-build/plinth}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "storage-test: $*" >&2; exit 1; }
expect_fail() {  # expect_fail WANT_RC GREP_TEXT CMD...: the command fails with WANT_RC and says GREP_TEXT
  local want=$1 text=$2
  shift 2
  set +e
  "$@" >"$tmp/out" 2>&1
  local rc=$?
  set -e
  [ "$rc" = "$want" ] || fail "'$*' exited $rc, want $want: $(cat "$tmp/out")"
  grep -qF -- "$text" "$tmp/out" || fail "'$*' did not say '$text': $(cat "$tmp/out")"
}

d="$tmp/ws"
mkdir -p "$d"
cat >"$d/main.plinth" <<'EOF'
region "eu" {}
region "us" { port_base = 21000 }

bucket "data" {
  region     = region.eu
  capacity   = 256KiB
  alert_at   = 50%
  versioning = true

  lifecycle_rule "raw" {
    prefix        = "raw/"
    archive_after = 30d
    expire_after  = 365d
  }

  backup {
    every = 24h
    to    = region.us
    keep  = { last = 3 }
  }

  grant "trainer" { access = "read" }
  grant "pipeline" { access = "write" }
}
EOF
"$plinth" apply --auto-approve "$d" >"$tmp/apply.txt" 2>&1 || fail "apply failed: $(cat "$tmp/apply.txt")"
repo="$d/.plinth/default/data/regions/us/backups/eu/data"
[ -f "$repo/config" ] || fail "apply did not create the backup repository at $repo"
[ "$(stat -c %a "$d/.plinth/default/workspace.key")" = 600 ] || fail "workspace key is not private"
"$plinth" plan --detailed-exitcode "$d" >"$tmp/plan.txt" 2>&1 || fail "plan after apply is not empty: $(cat "$tmp/plan.txt")"
if grep -q "pk1:" "$tmp/plan.txt" "$tmp/apply.txt"; then fail "a wrapped key appeared in plan or apply output"; fi

# Objects, versions and grants.
head -c 200000 /dev/urandom >"$tmp/blob.bin"
echo "first-version-text" >"$tmp/v1.txt"
echo "v2" >"$tmp/v2.txt"
B=(--dir="$d")
"$plinth" bucket put bucket.data raw/blob.bin "$tmp/blob.bin" "${B[@]}" 2>/dev/null || fail "put blob"
"$plinth" bucket put bucket.data notes.txt "$tmp/v1.txt" "${B[@]}" --as=pipeline 2>/dev/null || fail "put as pipeline"
"$plinth" bucket put bucket.data notes.txt "$tmp/v2.txt" "${B[@]}" 2>/dev/null || fail "put v2"
cmp -s "$d/.plinth/default/data/regions/eu/buckets/data/raw/blob.bin" "$tmp/blob.bin" || fail "object not readable by path"
[ "$("$plinth" bucket get bucket.data notes.txt "${B[@]}" --as=trainer)" = "v2" ] || fail "get as trainer"
vid=$("$plinth" bucket ls bucket.data --versions --json "${B[@]}" | grep -o '"id": "v[0-9a-f-]*"' | head -1 | cut -d'"' -f4)
[ -n "$vid" ] || fail "no stored version listed"
[ "$("$plinth" bucket get bucket.data notes.txt --version="$vid" "${B[@]}")" = "first-version-text" ] || fail "get --version"
expect_fail 1 "access denied: principal 'trainer' has read access" \
  "$plinth" bucket put bucket.data x.txt "$tmp/v1.txt" "${B[@]}" --as=trainer
expect_fail 1 "access denied: principal 'intruder' has no grant" \
  "$plinth" bucket get bucket.data notes.txt "${B[@]}" --as=intruder
expect_fail 1 "object key cannot contain '.' or '..' segments" \
  "$plinth" bucket put bucket.data ../escape "$tmp/v1.txt" "${B[@]}"
expect_fail 1 "no bucket 'bucket.nope' in the state" "$plinth" bucket ls bucket.nope "${B[@]}"

# Lifecycle with an injected clock: 40 days on, raw/ objects are archived,
# readable, and byte-identical; the capacity alert fired (usage > 50% of 256 KiB).
"$plinth" storage sweep "${B[@]}" --now="$(date -u -d '+40 days' +%Y-%m-%dT%H:%M:%SZ)" >"$tmp/sweep.txt" 2>&1 ||
  fail "sweep failed: $(cat "$tmp/sweep.txt")"
grep -q "lifecycle: 1 archived, 0 expired" "$tmp/sweep.txt" || fail "sweep did not archive: $(cat "$tmp/sweep.txt")"
grep -q "alert: BucketCapacity firing" "$tmp/sweep.txt" || fail "capacity alert did not fire: $(cat "$tmp/sweep.txt")"
grep -q '"alert":"BucketCapacity","bucket":"bucket.data"' "$d/.plinth/default/alerts.log" || fail "alerts.log"
grep -q '^plinth_bucket_capacity_alert{bucket="bucket.data",id="eu/data"} 1' "$d/.plinth/default/metrics/storage.prom" ||
  fail "metrics: $(cat "$d/.plinth/default/metrics/storage.prom")"
grep -q '^plinth_backup_runs_total{bucket="bucket.data",id="eu/data"} 1' "$d/.plinth/default/metrics/storage.prom" ||
  fail "the due backup did not run"
[ ! -e "$d/.plinth/default/data/regions/eu/buckets/data/raw/blob.bin" ] || fail "archived object still in the live tier"
"$plinth" bucket ls bucket.data "${B[@]}" | grep -q "^archive .* raw/blob.bin" || fail "ls does not show the archive tier"
# A key with control characters (a job can name files anything) is listed
# escaped on one line: it can neither move the cursor nor forge a line.
evil=$'fake\nlive           1 B  2026-01-01T00:00:00Z  forged\e[2K'
"$plinth" bucket put bucket.data "$evil" "$tmp/v1.txt" "${B[@]}" 2>/dev/null || fail "put a key with control characters"
"$plinth" bucket ls bucket.data "${B[@]}" >"$tmp/ls.txt"
grep -q "forged" "$tmp/ls.txt" || fail "ls does not list the key with control characters"
grep -q "^live  *1 B  2026-01-01" "$tmp/ls.txt" && fail "a key with a newline forged a listing line: $(cat "$tmp/ls.txt")"
[ "$(wc -l <"$tmp/ls.txt")" = 3 ] || fail "three objects should list on three lines: $(cat "$tmp/ls.txt")"
grep -q $'\e' "$tmp/ls.txt" && fail "ls printed a raw escape character"
grep -qF 'fake\nlive' "$tmp/ls.txt" || fail "ls did not escape the newline: $(cat "$tmp/ls.txt")"
"$plinth" bucket ls bucket.data --json "${B[@]}" | grep -qF '"key": "fake\nlive' || fail "--json lost the exact key"
"$plinth" bucket rm bucket.data "$evil" "${B[@]}" 2>/dev/null || fail "rm the key with control characters"
"$plinth" bucket get bucket.data raw/blob.bin "$tmp/back.bin" "${B[@]}" || fail "get of an archived object"
cmp -s "$tmp/back.bin" "$tmp/blob.bin" || fail "archived object is not byte-identical"
if grep -rqF "first-version-text" "$d/.plinth/default/data/regions/eu/.plinth-storage"; then fail "a stored version is in clear"; fi
# A second sweep at the same time has nothing to do and the alert does not fire again.
"$plinth" storage sweep "${B[@]}" --now="$(date -u -d '+40 days' +%Y-%m-%dT%H:%M:%SZ)" >"$tmp/sweep2.txt" 2>&1 ||
  fail "second sweep failed"
if grep -q "alert:" "$tmp/sweep2.txt"; then fail "the alert fired twice: $(cat "$tmp/sweep2.txt")"; fi

# Backups: run, retention (keep last 3; the sweep above took one, dated by
# its clock), and the restore drill.
for i in 1 2; do "$plinth" backup run bucket.data "${B[@]}" >/dev/null 2>&1 || fail "backup run $i"; done
[ "$("$plinth" backup list bucket.data "${B[@]}" | wc -l)" = 3 ] || fail "want 3 snapshots: $("$plinth" backup list bucket.data "${B[@]}")"
first=$("$plinth" backup list bucket.data --json "${B[@]}" | grep -o '"short_id": "[0-9a-f]*"' | head -1 | cut -d'"' -f4)
"$plinth" backup check bucket.data "${B[@]}" >/dev/null || fail "backup check"
drill=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 1
live="$d/.plinth/default/data/regions/eu/buckets/data"
mkdir -p "$live/deep/er"
head -c 4096 /dev/urandom >"$live/deep/er/f.bin"
"$plinth" backup run bucket.data "${B[@]}" >/dev/null 2>&1 || fail "backup run 3"
"$plinth" backup list bucket.data "${B[@]}" >"$tmp/snaps.txt"
[ "$(wc -l <"$tmp/snaps.txt")" = 3 ] || fail "retention did not keep exactly 3: $(cat "$tmp/snaps.txt")"
if grep -q "^$first" "$tmp/snaps.txt"; then fail "retention kept the oldest snapshot $first"; fi
(cd "$live" && find . -type f ! -name '.plinth*' -print0 | sort -z | xargs -0 sha256sum) >"$tmp/before.sum"
find "$live" -mindepth 1 ! -name '.plinth-bucket.json' -delete
"$plinth" restore bucket.data --at="$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${B[@]}" >"$tmp/restore.txt" 2>&1 ||
  fail "restore failed: $(cat "$tmp/restore.txt")"
(cd "$live" && find . -type f ! -name '.plinth*' -print0 | sort -z | xargs -0 sha256sum) >"$tmp/after.sum"
cmp -s "$tmp/before.sum" "$tmp/after.sum" || fail "restored bucket differs: $(diff "$tmp/before.sum" "$tmp/after.sum")"
# Point in time: the snapshot before deep/er/f.bin existed, into a directory.
"$plinth" restore bucket.data --at="$drill" --to="$tmp/pit" "${B[@]}" >"$tmp/pit.txt" 2>&1 || fail "restore --to: $(cat "$tmp/pit.txt")"
[ -f "$tmp/pit/notes.txt" ] && [ ! -e "$tmp/pit/deep/er/f.bin" ] || fail "point-in-time restore picked the wrong snapshot"
expect_fail 1 "no backup at or before" "$plinth" restore bucket.data --at=2020-01-01 --to="$tmp/none" "${B[@]}"

# A damaged repository is reported, nothing deleted; a missing one is drift that apply repairs.
pack=$(find "$repo/data" -type f | head -1)
cp "$pack" "$tmp/pack.bak"
printf 'garbage' >"$pack"
expect_fail 1 "" "$plinth" backup check bucket.data "${B[@]}"
[ -f "$live/notes.txt" ] || fail "a failed check touched the bucket"
cp "$tmp/pack.bak" "$pack"
mv "$repo" "$tmp/repo.moved"
expect_fail 1 "no backup repository" "$plinth" backup list bucket.data "${B[@]}"
"$plinth" plan "$d" 2>&1 | grep -q "1 to update" || fail "a missing repository is not drift"
"$plinth" apply --auto-approve "$d" >/dev/null 2>&1 || fail "apply did not repair the repository"
[ -f "$repo/config" ] || fail "apply did not recreate the repository"

# Destroy: refused before anything changes while the bucket holds data and
# the backup region holds its snapshots; each error says what holds data and
# how to opt in.
"$plinth" backup run bucket.data "${B[@]}" >/dev/null 2>&1 || fail "backup run before destroy"
expect_fail 1 "error: bucket.data still holds " "$plinth" destroy --auto-approve "$d"
grep -qF "; empty it first, or, to delete it with its data, set force_destroy = true on bucket.data, apply, then destroy" "$tmp/out" &&
  grep -qF "error: region.us still holds backup repository 'regions/us/backups/eu/data' with 1 snapshot" "$tmp/out" &&
  grep -qF "Destroy failed: 0 changed" "$tmp/out" || fail "refused destroy: $(cat "$tmp/out")"
[ -f "$live/notes.txt" ] && [ -f "$repo/config" ] || fail "a refused destroy deleted data"
# Opting in is an in-place update; then the plan lists every kind of data
# the destroy deletes, and the destroy leaves nothing behind.
sed -i 's/^  versioning = true$/  versioning = true\n  force_destroy = true/' "$d/main.plinth"
"$plinth" plan "$d" 2>&1 | grep -q "~ force_destroy = false -> true" || fail "force_destroy is not an in-place update"
"$plinth" apply --auto-approve "$d" >/dev/null 2>&1 || fail "apply of force_destroy"
"$plinth" plan --destroy "$d" >"$tmp/destroy-plan.txt" 2>/dev/null || fail "plan --destroy: $(cat "$tmp/destroy-plan.txt")"
for what in "! deletes [0-9]* objects (" "! deletes [0-9]* stored versions\? (" \
  "! deletes backup repository 'regions/us/backups/eu/data' with 1 snapshot ("; do
  grep -q "$what" "$tmp/destroy-plan.txt" || fail "plan --destroy does not show '$what': $(cat "$tmp/destroy-plan.txt")"
done
"$plinth" destroy --auto-approve "$d" >"$tmp/destroy.txt" 2>&1 || fail "destroy with force_destroy: $(cat "$tmp/destroy.txt")"
left=$(find "$d/.plinth/default/data" -mindepth 1)
[ -z "$left" ] || fail "destroy left data behind: $left"

# ---------------------------------------------------------------- the threat model (docs/storage.md)
# A writer of a bucket's directory cannot make plinth use its metadata file's
# settings or keys, or lead an object command out of the bucket by a symlink.
d2="$tmp/ws2"
mkdir -p "$d2" "$tmp/outside"
cat >"$d2/main.plinth" <<'EOF'
region "eu" {}

bucket "a" {
  region     = region.eu
  versioning = true
  grant "owner" { access = "read" }
}

bucket "b" {
  region = region.eu
  grant "intruder" { access = "read" }
}
EOF
"$plinth" apply --auto-approve "$d2" >"$tmp/apply2.txt" 2>&1 || fail "apply ws2: $(cat "$tmp/apply2.txt")"
B2=(--dir="$d2")
data2="$d2/.plinth/default/data/regions/eu"
echo "a-secret-v1" >"$tmp/a1.txt"
echo "a-secret-v2" >"$tmp/a2.txt"
"$plinth" bucket put bucket.a s.txt "$tmp/a1.txt" "${B2[@]}" 2>/dev/null || fail "put a v1"
"$plinth" bucket put bucket.a s.txt "$tmp/a2.txt" "${B2[@]}" 2>/dev/null || fail "put a v2"
avid=$("$plinth" bucket ls bucket.a --versions --json "${B2[@]}" | grep -o '"id": "v[0-9a-f-]*"' | head -1 | cut -d'"' -f4)
[ -n "$avid" ] || fail "no stored version in bucket.a"
expect_fail 1 "access denied: principal 'intruder' has no grant" \
  "$plinth" bucket get bucket.a s.txt --version="$avid" "${B2[@]}" --as=intruder
# b's metadata rewritten to describe bucket a (its id, name and wrapped key),
# keeping b's grant: the stored version of a must stay out of reach.
python3 -c '
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
for k in ("id", "bucket", "key"): b[k] = a[k]
json.dump(b, open(sys.argv[2], "w"))
' "$data2/buckets/a/.plinth-bucket.json" "$data2/buckets/b/.plinth-bucket.json"
expect_fail 1 "the metadata file of bucket.b" "$plinth" bucket get bucket.b s.txt --version="$avid" "${B2[@]}" --as=intruder
grep -qF "disagrees with the state on 'id'" "$tmp/out" && grep -qF "run plinth apply to rewrite it" "$tmp/out" ||
  fail "the refusal does not say what disagrees and what to do: $(cat "$tmp/out")"
if grep -q "a-secret" "$tmp/out"; then fail "bucket.b's metadata file exposed bucket.a's data"; fi
if grep -q "pk1:" "$tmp/out"; then fail "a wrapped key appeared in an error"; fi
# A rule added there must not make a routine sweep delete a's versions.
python3 -c '
import json, sys
b = json.load(open(sys.argv[1]))
b["attributes"]["lifecycle_rule"] = {"wipe": {"prefix": "", "archive_after": None, "expire_after": {"$duration": 1},
                                              "noncurrent_expire_after": {"$duration": 1}}}
json.dump(b, open(sys.argv[1], "w"))
' "$data2/buckets/b/.plinth-bucket.json"
expect_fail 1 "the metadata file of bucket.b" "$plinth" storage sweep "${B2[@]}" --now="$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)"
[ "$("$plinth" bucket get bucket.a s.txt --version="$avid" "${B2[@]}")" = "a-secret-v1" ] || fail "a sweep deleted a's version"
[ "$("$plinth" bucket get bucket.a s.txt "${B2[@]}")" = "a-secret-v2" ] || fail "a sweep deleted a's object"
# Drift that apply repairs: the plan updates bucket.b and apply rewrites the file.
"$plinth" plan "$d2" >"$tmp/plan2.txt" 2>&1 || true
grep -q "1 to update" "$tmp/plan2.txt" || fail "a tampered metadata file is not drift: $(cat "$tmp/plan2.txt")"
"$plinth" apply --auto-approve "$d2" >/dev/null 2>&1 || fail "apply did not rewrite the metadata"
"$plinth" bucket ls bucket.b "${B2[@]}" --as=intruder >/dev/null 2>&1 || fail "bucket.b unusable after apply"

# Symlinks inside a bucket are not objects, and nothing follows them.
echo "private" >"$tmp/outside/secret.txt"
chmod 600 "$tmp/outside/secret.txt"
ln -s "$tmp/outside" "$data2/buckets/b/dir"
ln -s "$tmp/outside/secret.txt" "$data2/buckets/b/link.txt"
expect_fail 1 "is or passes through a symbolic link" "$plinth" bucket get bucket.b dir/secret.txt "${B2[@]}"
if grep -q private "$tmp/out"; then fail "get read through a symlinked directory"; fi
expect_fail 1 "is or passes through a symbolic link" "$plinth" bucket get bucket.b link.txt "${B2[@]}"
expect_fail 1 "is or passes through a symbolic link" "$plinth" bucket put bucket.b dir/new.txt "$tmp/a1.txt" "${B2[@]}"
[ "$(ls -A "$tmp/outside")" = "secret.txt" ] || fail "put wrote through a symlinked directory: $(ls -A "$tmp/outside")"
expect_fail 1 "is or passes through a symbolic link" "$plinth" bucket rm bucket.b dir/secret.txt "${B2[@]}"
[ -f "$tmp/outside/secret.txt" ] || fail "rm deleted through a symlinked directory"
"$plinth" bucket ls bucket.b "${B2[@]}" >"$tmp/ls-b.txt" 2>&1 || fail "ls with symlinks: $(cat "$tmp/ls-b.txt")"
if grep -q "secret\|link" "$tmp/ls-b.txt"; then fail "ls listed a symlink: $(cat "$tmp/ls-b.txt")"; fi
rm "$data2/buckets/b/dir" "$data2/buckets/b/link.txt"

# bucket get FILE: '-' is standard output; a relative FILE is written and
# the command succeeds; a symlink at FILE is never replaced.
[ "$("$plinth" bucket get bucket.a s.txt - "${B2[@]}")" = "a-secret-v2" ] || fail "get to -"
[ "$("$plinth" bucket get bucket.a s.txt - --version="$avid" "${B2[@]}")" = "a-secret-v1" ] || fail "get --version to -"
[ "$("$plinth" bucket get bucket.a s.txt /dev/stdout "${B2[@]}" | cat)" = "a-secret-v2" ] || fail "get to /dev/stdout (a pipe)"
mkdir -p "$tmp/cwd"
(cd "$tmp/cwd" && "$plinth" bucket get bucket.a s.txt out.txt --dir="$d2") || fail "get to a relative FILE failed"
[ "$(cat "$tmp/cwd/out.txt")" = "a-secret-v2" ] || fail "get to a relative FILE wrote the wrong content"
(cd "$tmp/cwd" && "$plinth" bucket get bucket.a s.txt old.txt --version="$avid" --dir="$d2") ||
  fail "get --version to a relative FILE failed"
[ "$(cat "$tmp/cwd/old.txt")" = "a-secret-v1" ] || fail "get --version to a relative FILE wrote the wrong content"
(cd "$tmp/cwd" && "$plinth" bucket get bucket.a s.txt - --version="$avid" --dir="$d2" >/dev/null) || fail "get - from cwd"
[ "$(ls -A "$tmp/cwd" | tr '\n' ' ')" = "old.txt out.txt " ] || fail "get left files in the current directory: $(ls -A "$tmp/cwd")"
if find "$data2" -name '.plinth-get-*' | grep -q .; then fail "get left plaintext in the data tier"; fi
echo "keep" >"$tmp/target.txt"
ln -s "$tmp/target.txt" "$tmp/link-out"
expect_fail 1 "is a symbolic link" "$plinth" bucket get bucket.a s.txt "$tmp/link-out" "${B2[@]}"
[ -L "$tmp/link-out" ] && [ "$(cat "$tmp/target.txt")" = "keep" ] || fail "get replaced or wrote through a symlink"

# A bucket create whose backup repository cannot be made leaves a state from
# which the next apply succeeds (nothing half-made in the way).
d3="$tmp/ws3"
mkdir -p "$d3" "$tmp/fakebin"
cat >"$d3/main.plinth" <<'EOF'
region "eu" {}
region "us" { port_base = 21000 }

bucket "data" {
  region = region.eu
  backup {
    every = 24h
    to    = region.us
  }
}
EOF
cat >"$tmp/fakebin/restic" <<'EOF'
#!/bin/sh
# restic that finds no repository and is interrupted half-way through init.
repo=
for a in "$@"; do case $a in --repo=*) repo=${a#--repo=} ;; esac; done
case " $* " in
  *" cat config "*) echo "Fatal: unable to open config file: stat $repo/config: no such file or directory" >&2; exit 1 ;;
  *" init "*) mkdir -p "$repo/keys"; echo "Fatal: create key in repository at $repo failed: interrupted" >&2; exit 1 ;;
esac
exit 1
EOF
chmod +x "$tmp/fakebin/restic"
set +e
PATH="$tmp/fakebin:$PATH" "$plinth" apply --auto-approve "$d3" >"$tmp/apply3.txt" 2>&1
rc=$?
set -e
[ "$rc" != 0 ] || fail "apply with a failing restic succeeded"
grep -q "cannot create the backup repository" "$tmp/apply3.txt" || fail "apply with a failing restic: $(cat "$tmp/apply3.txt")"
"$plinth" apply --auto-approve "$d3" >"$tmp/apply3b.txt" 2>&1 || fail "apply after a failed bucket create: $(cat "$tmp/apply3b.txt")"
[ -f "$d3/.plinth/default/data/regions/us/backups/eu/data/config" ] || fail "the second apply made no repository"
"$plinth" plan --detailed-exitcode "$d3" >/dev/null 2>&1 || fail "plan after the repaired create is not empty"
echo "storage-test: ok"
