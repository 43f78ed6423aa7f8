#!/usr/bin/env bash
# End-to-end checks of the CLI contract: exit codes, JSON output, fmt.
set -euo pipefail
cd "$(dirname "$0")/.."
plinth=${1:-build/plinth}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli-test: $*" >&2; exit 1; }

for ex in examples/*/; do
  "$plinth" validate "$ex" >/dev/null || fail "example $ex does not validate"
  "$plinth" fmt --check "$ex" >/dev/null || fail "example $ex is not formatted (run plinth fmt $ex)"
done

# Errors: exit 1, located diagnostics on stderr, JSON on stdout with --json.
printf 'region "eu" {}\nbucket "b" {\n  region = region.us\n}\n' > "$tmp/main.plinth"
set +e
"$plinth" validate "$tmp" 2>"$tmp/err" >/dev/null; rc=$?
set -e
[ "$rc" = 1 ] || fail "validate of a broken config exited $rc, want 1"
grep -q "main.plinth:3:12: error\[P0202\]" "$tmp/err" || fail "missing located P0202 diagnostic: $(cat "$tmp/err")"
set +e
"$plinth" validate --json "$tmp" >"$tmp/out.json"; rc=$?
set -e
[ "$rc" = 1 ] || fail "validate --json exited $rc, want 1"
grep -q '"format_version": 1' "$tmp/out.json" || fail "JSON lacks format_version"
grep -q '"code": "P0202"' "$tmp/out.json" || fail "JSON lacks the P0202 diagnostic"

# fmt --check: exit 3 and the file listed; fmt rewrites; then --check is clean.
printf 'region "eu" {\nport_base=20000\n    down = false\n}\n' > "$tmp/main.plinth"
set +e
"$plinth" fmt --check "$tmp" >"$tmp/list"; rc=$?
set -e
[ "$rc" = 3 ] || fail "fmt --check exited $rc, want 3"
grep -q "main.plinth" "$tmp/list" || fail "fmt --check did not list the file"
"$plinth" fmt "$tmp" >/dev/null || fail "fmt failed"
"$plinth" fmt --check "$tmp" >/dev/null || fail "fmt output is not stable"
grep -q "  port_base = 20000" "$tmp/main.plinth" || fail "fmt did not align: $(cat "$tmp/main.plinth")"

# Usage errors exit 2.
set +e
"$plinth" validate --bogus >/dev/null 2>&1; rc=$?
set -e
[ "$rc" = 2 ] || fail "unknown option exited $rc, want 2"
echo "cli-test: ok"
