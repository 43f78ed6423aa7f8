#!/usr/bin/env bash
# Builds and checks the VS Code extension in vscode-extension/: installs its npm
# packages (npm ci, from package-lock.json), type-checks it (tsc --noEmit),
# bundles it with esbuild, runs the unit tests of its helpers (node --test), the
# TextMate grammar tests (vscode-tmgrammar-test on test/grammar/*.test.plinth)
# and the check that every contributed command has a handler, then packages it
# with vsce (offline: no publishing, no dependency listing) and checks that the
# .vsix holds the bundle, the grammar and the manifest.
# Usage: scripts/vscode-extension-test.sh [OUTPUT.vsix]
#   default output: build/plinth-VERSION.vsix in the repository root.
# Needs node and npm (the pinned packages allow Node 18, Debian 12's nodejs; run here on 20); the npm registry, unless the npm cache
# already holds the packages.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ext="$root/vscode-extension"
start=$SECONDS

command -v node >/dev/null || { echo "vscode-extension: node is not installed" >&2; exit 1; }
command -v npm >/dev/null || { echo "vscode-extension: npm is not installed" >&2; exit 1; }

version="$(node -p "require('$ext/package.json').version")"
out="${1:-$root/build/plinth-$version.vsix}"
case "$out" in
  /*) ;;
  *) out="$PWD/$out" ;;
esac
mkdir -p "$(dirname "$out")"

cd "$ext"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

step() {
  # step NAME COMMAND...: runs the command quietly; on failure prints its output.
  local name="$1"
  shift
  if ! "$@" >"$log" 2>&1; then
    echo "vscode-extension: $name failed:" >&2
    cat "$log" >&2
    exit 1
  fi
}

# --ignore-scripts: no install script is needed (esbuild finds its binary
# through its platform package) and none may download anything.
step "npm ci" npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
step "type check (tsc --noEmit)" npm run -s typecheck
step "bundle (esbuild)" npm run -s bundle
test -s out/extension.js || { echo "vscode-extension: out/extension.js is missing" >&2; exit 1; }

step "unit tests" npm run -s test:unit
unit_pass="$(sed -n 's/^# pass //p' "$log")"
unit_fail="$(sed -n 's/^# fail //p' "$log")"
echo "vscode-extension: unit tests: ${unit_pass:-0} passed, ${unit_fail:-0} failed"

step "grammar tests" npm run -s test:grammar
files=(test/grammar/*.test.plinth)
assertions="$(cat "${files[@]}" | grep -cE '^#[[:space:]]*(\^|<~*-)')"
passed="$(grep -c 'run successfuly' "$log" || true)"
if [ "$passed" -ne "${#files[@]}" ]; then
  echo "vscode-extension: grammar tests: $passed of ${#files[@]} files passed:" >&2
  cat "$log" >&2
  exit 1
fi

# plinth lsp through the client libraries VS Code uses (test/lsp/conformance.mjs).
plinth_bin="${PLINTH:-$root/build/plinth}"
if [ -x "$plinth_bin" ]; then
  step "lsp conformance" node test/lsp/conformance.mjs "$plinth_bin"
  echo "vscode-extension: $(tail -n 1 "$log")"
else
  echo "vscode-extension: lsp conformance skipped: $plinth_bin is not built (PLINTH=PATH names another)" >&2
fi

step "contributes check" npm run -s test:contributes
echo "vscode-extension: $(tail -n 1 "$log")"

rm -f "$out"
# Output to a file, not a terminal: vsce then makes no version check either.
step "vsce package" npx --no-install vsce package --no-dependencies \
  --allow-missing-repository --skip-license --out "$out"

listing="$(mktemp)"
trap 'rm -f "$log" "$listing"' EXIT
if command -v unzip >/dev/null; then
  unzip -Z1 "$out" >"$listing"
else
  python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$out" >"$listing"
fi
for f in extension/package.json extension/out/extension.js extension/syntaxes/plinth.tmLanguage.json \
         extension/snippets/plinth.json extension/language-configuration.json extension/readme.md; do
  grep -qixF "$f" "$listing" || { echo "vscode-extension: $f is not in $out:" >&2; cat "$listing" >&2; exit 1; }
done
if grep -E '^extension/(node_modules|src|test)/' "$listing" >/dev/null; then
  echo "vscode-extension: $out holds files that belong out of it:" >&2
  cat "$listing" >&2
  exit 1
fi

size_kib=$(( ($(wc -c <"$out") + 1023) / 1024 ))
echo "vscode-extension: $assertions grammar tests passed (${#files[@]} files); .vsix at $out ($size_kib KiB) in $((SECONDS - start)) s"
