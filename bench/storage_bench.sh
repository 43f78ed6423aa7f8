#!/usr/bin/env bash
# Backup and restore of a 1 GiB local bucket (docs/benchmarks.md, "Storage"):
# fills a bucket with SIZE_MIB of incompressible data in 16 MiB files, then
# times `plinth backup run` (first, full), a second backup with nothing
# changed, `restore --to=DIR` (restic straight to a directory) and `restore`
# into the emptied bucket (staged, then put object by object so versioning
# applies), and checks the restored bytes.
#
#   bench/storage_bench.sh BUILD_DIR [SIZE_MIB]
set -euo pipefail
plinth=$(realpath "${1:?usage: $0 BUILD_DIR [SIZE_MIB]}/plinth")
size=${2:-1024}
tmp=$(mktemp -d /var/tmp/plinth-storage-bench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/main.plinth" <<'CONF'
region "eu" {}
region "us" { port_base = 21000 }
bucket "data" {
  region = region.eu
  backup {
    every = 24h
    to    = region.us
  }
}
CONF
"$plinth" apply --auto-approve "$tmp" >/dev/null 2>&1
live="$tmp/.plinth/default/data/regions/eu/buckets/data"
files=$((size / 16))
for i in $(seq 1 "$files"); do head -c $((16 << 20)) /dev/urandom >"$live/part-$i.bin"; done
sync
(cd "$live" && sha256sum part-*.bin) >"$tmp/sums"
t() {  # runs a command, prints its wall time in seconds
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
  t1=$(date +%s%N)
  printf '%d.%02d' $(((t1 - t0) / 1000000000)) $((((t1 - t0) / 10000000) % 100))
}
echo "bucket: $files files, $size MiB (incompressible)"
echo "backup run (first, full):      $(t "$plinth" backup run bucket.data --dir="$tmp") s"
echo "backup run (nothing changed):  $(t "$plinth" backup run bucket.data --dir="$tmp") s"
echo "restore --to=DIR:              $(t "$plinth" restore bucket.data --at="$(date -u +%Y-%m-%dT%H:%M:%SZ)" --to="$tmp/out" --dir="$tmp") s"
(cd "$tmp/out" && sha256sum -c --quiet "$tmp/sums") || { echo "restore --to: bytes differ" >&2; exit 1; }
rm -rf "$tmp/out"
find "$live" -name 'part-*.bin' -delete
echo "restore into the bucket:       $(t "$plinth" restore bucket.data --at="$(date -u +%Y-%m-%dT%H:%M:%SZ)" --dir="$tmp") s"
(cd "$live" && sha256sum -c --quiet "$tmp/sums") || { echo "restore into the bucket: bytes differ" >&2; exit 1; }
echo "restored bytes: identical ($files files)"
