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
echo "storage-test: ok"
