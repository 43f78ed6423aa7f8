#!/usr/bin/env bash
# Documented examples run: every ```plinth block in README.md and docs/ is a
# complete configuration that `plinth validate` accepts, unless the line right
# before its fence is `<!-- fragment -->`; a block whose comments say
# `# error PNNNN` must fail with exactly those errors (docs/doc-examples.md).
# Each block is checked alone, in a directory of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
plinth=${1:-build/plinth}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Splits the blocks out: $tmp/N/main.plinth, and $tmp/N/where with FILE:LINE.
n=0
for doc in README.md docs/*.md docs/*/*.md; do
  n=$(awk -v doc="$doc" -v out="$tmp" -v n="$n" '
    /^```plinth[[:space:]]*$/ && !inside {
      inside = 1
      skip = (prev ~ /^<!-- fragment -->[[:space:]]*$/)
      if (!skip) {
        n++
        dir = out "/" n
        system("mkdir -p " dir)
        printf "" > (dir "/main.plinth")
        print doc ":" NR + 1 > (dir "/where")
        close(dir "/where")
      }
      prev = $0
      next
    }
    inside && /^```[[:space:]]*$/ { inside = 0; if (!skip) close(dir "/main.plinth"); prev = $0; next }
    inside && !skip { print > (dir "/main.plinth") }
    { prev = $0 }
    END { print n }
  ' "$doc")
done

# A block whose lines say `# error PNNNN` shows those errors: it must fail
# with exactly those codes on exactly those lines. Any other block must pass.
check() {
  local dir=$1 expected actual
  expected=$(grep -n -o '# error P[0-9]*' "$dir/main.plinth" | sed 's/:# error / /' | sort -u || true)
  if "$plinth" validate "$dir" >"$dir/out" 2>&1; then
    [ -z "$expected" ] && return 0
    echo "it validates, but its comments say it shows errors: $expected" >"$dir/out"
    return 1
  fi
  actual=$(grep -o 'main\.plinth:[0-9]*:[0-9]*: error\[P[0-9]*\]' "$dir/out" |
    sed 's/.*main\.plinth:\([0-9]*\):[0-9]*: error\[\(P[0-9]*\)\]/\1 \2/' | sort -u || true)
  [ -n "$expected" ] && [ "$expected" = "$actual" ] && return 0
  [ -n "$expected" ] && echo "expected errors (line code): $expected; got: $actual" >>"$dir/out"
  return 1
}
export -f check
export plinth

# Two at a time: each validate is a process start and a check of its own.
seq 1 "$n" | xargs -P 2 -I{} bash -c 'check "$0/{}" || touch "$0/{}/failed"' "$tmp"
failed=0
for ((i = 1; i <= n; i++)); do
  dir="$tmp/$i"
  [ -e "$dir/failed" ] || continue
  echo "docs-examples-test: the example at $(cat "$dir/where") does not validate" \
    "(mark it with <!-- fragment --> on the line before the fence if it is not a whole configuration):" >&2
  sed "s|$dir/||" "$dir/out" >&2
  failed=$((failed + 1))
done
[ "$failed" = 0 ] || { echo "docs-examples-test: $failed of $n examples fail" >&2; exit 1; }
echo "docs-examples-test: $n examples check"
