#!/usr/bin/env bash
# A disaster recovery drill on a workspace's bucket (docs/storage.md): puts a
# sample object, backs the bucket up to its backup region, deletes the
# bucket's files behind Plinth's back (a lost disk), restores the bucket as it
# was at the backup, and checks every file is byte-identical.
#
#   scripts/restore-drill.sh PLINTH CONFIG_DIR [BUCKET_ADDRESS]
set -euo pipefail
plinth=$(realpath "${1:?usage: $0 PLINTH CONFIG_DIR [BUCKET_ADDRESS]}")
dir=${2:?usage: $0 PLINTH CONFIG_DIR [BUCKET_ADDRESS]}
bucket=${3:-bucket.datasets}
fail() { echo "restore drill: FAILED: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

live=$("$plinth" state show --dir="$dir" "$bucket" | sed -n 's/^ *path *= "\(.*\)"$/\1/p')
[ -d "$live" ] || fail "no directory for $bucket (apply the configuration first)"
head -c 1048576 /dev/urandom >"$tmp/sample.bin"
"$plinth" bucket put "$bucket" raw/drill/sample.bin "$tmp/sample.bin" --dir="$dir" 2>/dev/null || fail "put"
"$plinth" backup run "$bucket" --dir="$dir" || fail "backup"
(cd "$live" && find . -type f ! -name '.plinth*' -print0 | sort -z | xargs -0 -r sha256sum) >"$tmp/before"
at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "restore drill: deleting every object of $bucket in $live"
find "$live" -mindepth 1 ! -name '.plinth-bucket.json' -delete
"$plinth" restore "$bucket" --at="$at" --dir="$dir" || fail "restore"
(cd "$live" && find . -type f ! -name '.plinth*' -print0 | sort -z | xargs -0 -r sha256sum) >"$tmp/after"
cmp -s "$tmp/before" "$tmp/after" || fail "restored files differ: $(diff "$tmp/before" "$tmp/after")"
echo "restore drill: passed ($(wc -l <"$tmp/after") files byte-identical after restore)"
