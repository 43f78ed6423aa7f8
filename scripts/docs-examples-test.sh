#!/usr/bin/env bash
# Documented examples run: every ```plinth block in README.md and docs/ is a
# complete configuration that `plinth validate` accepts, unless the line right
# before its fence is `<!-- fragment -->`; a block whose comments say
# `# error PNNNN` must fail with exactly those errors (docs/doc-examples.md).
# Each block is checked alone, in a directory of its own. Then: a document's
# policy_test examples pass with its policy examples, `$ plinth ...`
# transcripts print what they show, and documented command lines use only
# options the binary has (and every option is documented).
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
[ "$failed" = 0 ] || echo "docs-examples-test: $failed of $n examples fail" >&2

# Policies: a document whose examples hold policy_test blocks must pass its
# own cases: its policy and policy_test examples together, with
# `plinth policy test` (docs/policy.md).
policy_docs=0
for doc in README.md docs/*.md docs/*/*.md; do
  dir="$tmp/policies-$((policy_docs + 1))"
  mkdir -p "$dir"
  for where in $(grep -l "^$doc:" "$tmp"/*/where 2>/dev/null || true); do
    block=$(dirname "$where")/main.plinth
    if grep -q '^policy\(_test\)\? "' "$block"; then cp "$block" "$dir/example-$(basename "$(dirname "$where")").plinth"; fi
  done
  grep -qs '^policy_test "' "$dir"/*.plinth || continue
  policy_docs=$((policy_docs + 1))
  if ! "$plinth" policy test "$dir" >"$dir/out" 2>&1; then
    echo "docs-examples-test: the policy_test examples of $doc fail with its policy examples (plinth policy test):" >&2
    sed "s|$dir/||" "$dir/out" >&2
    failed=$((failed + 1))
  fi
done

# Transcripts: a `$ plinth ...` line in a ```text block is run (in an empty
# directory) and must print exactly the lines that follow it.
scratch="$tmp/transcripts"
mkdir -p "$scratch"
plinth_abs=$(cd "$(dirname "$plinth")" && pwd)/$(basename "$plinth")
transcripts=0
for doc in README.md docs/*.md docs/*/*.md; do
  awk -v out="$tmp/t" -v doc="$doc" '
    /^```text[[:space:]]*$/ && !inside { inside = 1; next }
    inside && /^```[[:space:]]*$/ { inside = 0; if (f) close(f); f = ""; next }
    inside && /^\$ plinth / { name = doc; gsub("/", "_", name); f = out "-" name "-" NR; sub("^\\$ ", ""); print > f; next }
    inside && f { print > f }
  ' "$doc"
done
for t in "$tmp"/t-*; do
  [ -e "$t" ] || continue
  transcripts=$((transcripts + 1))
  cmd=$(head -n 1 "$t")
  expected=$(tail -n +2 "$t")
  actual=$(cd "$scratch" && eval "\"$plinth_abs\"${cmd#plinth}" 2>&1 || true)
  if [ "$expected" != "$actual" ]; then
    echo "docs-examples-test: the transcript '$cmd' (${t#"$tmp"/t-}) prints something else:" >&2
    diff <(echo "$expected") <(echo "$actual") >&2 || true
    failed=$((failed + 1))
  fi
done

# Command lines: every option a documented `plinth COMMAND ...` line shows
# exists in that command's help, and every option of every command's help is
# documented somewhere in docs/.
"$plinth" help --list-commands >"$tmp/commands"
options_of() { "$plinth" help $1 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u; }
synopses=0
while IFS= read -r line; do
  line=${line%%#*}
  group=""
  IFS='|' read -r -a segments <<<"${line#plinth }"
  for seg in "${segments[@]}"; do
    read -r -a words <<<"$seg"
    [ "${#words[@]}" -gt 0 ] || continue
    if [ -z "$group" ]; then
      path=${words[0]}
      grep -qFx -- "$path" "$tmp/commands" || break
      group=$path
      if [ "${#words[@]}" -gt 1 ] && grep -qFx -- "$path ${words[1]}" "$tmp/commands"; then path="$path ${words[1]}"; fi
    else
      path="$group ${words[0]}"
      grep -qFx -- "$path" "$tmp/commands" || continue
    fi
    synopses=$((synopses + 1))
    known=$(options_of "$path")
    for opt in $(grep -o -- '--[a-z][a-z-]*' <<<"$seg" | sort -u); do
      if ! grep -qFx -- "$opt" <<<"$known"; then
        echo "docs-examples-test: docs show 'plinth $path ... $opt', but 'plinth help $path' has no $opt" >&2
        failed=$((failed + 1))
      fi
    done
  done
done < <(for doc in README.md docs/*.md docs/*/*.md; do
  awk '/^```/ { inside = !inside; next } inside && /^plinth [a-z]/' "$doc"
done)
while IFS= read -r path; do
  for opt in $(options_of "$path"); do
    if ! grep -rqF -- "$opt" README.md docs; then
      echo "docs-examples-test: 'plinth $path' takes $opt, which no document mentions" >&2
      failed=$((failed + 1))
    fi
  done
done <"$tmp/commands"

[ "$failed" = 0 ] || { echo "docs-examples-test: $failed checks fail" >&2; exit 1; }
echo "docs-examples-test: $n examples, $policy_docs documents' policy tests, $transcripts transcripts and" \
  "$synopses command lines check"
