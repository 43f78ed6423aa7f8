#!/usr/bin/env bash
# Fuzzes the front end (lexer, parser, formatter, checker) and the language
# server (its features on the input as a buffer, and its framing) with libFuzzer.
#
#   scripts/fuzz.sh               # FUZZ_SECONDS (default 60) of fuzzing
#   scripts/fuzz.sh --build-only  # only build build-fuzz/plinth-fuzz
#
# Builds build-fuzz/plinth-fuzz with clang (ASan + UBSan, coverage on every
# compiler source), replays tests/fuzz/regressions/*, seeds a temporary corpus
# from tests/golden/**/*.plinth and examples/**/*.plinth, then fuzzes with
# -max_len=65536 -timeout=10 -rss_limit_mb=2048. Exits non-zero on a crash,
# timeout or OOM; the reproducer is kept in build-fuzz/artifacts/ (replay it
# with: build-fuzz/plinth-fuzz FILE). Skips (exit 0) when clang++ is missing.
# Environment: FUZZ_SECONDS, FUZZ_JOBS (parallel fuzzing processes, default 1),
# FUZZ_CORPUS (a directory to keep the corpus in instead of a temporary one),
# PLINTH_FUZZ_NO_FMT_INVARIANTS=1 (do not abort on formatter invariant violations).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

if ! command -v clang++ >/dev/null 2>&1 || ! command -v clang >/dev/null 2>&1; then
  echo "fuzz: clang/clang++ not found; skipping the fuzz run (install clang to enable it)"
  exit 0
fi

SECONDS_TO_RUN="${FUZZ_SECONDS:-60}"
JOBS="${FUZZ_JOBS:-1}"
BUILD="$ROOT/build-fuzz"
ARTIFACTS="$BUILD/artifacts"

extra=()
# The ANTLR 4.9 runtime headers declare `Vocabulary() = default;` with const
# std::vector members, which clang rejects (GCC accepts it). Use a copy of the
# headers with `{}` initializers on those members; the layout and ABI are the same.
for inc in /usr/include/antlr4-runtime /usr/local/include/antlr4-runtime; do
  if [[ -f "$inc/Vocabulary.h" ]]; then
    if grep -q 'std::vector<std::string> const _literalNames;' "$inc/Vocabulary.h"; then
      mkdir -p "$BUILD"
      rm -rf "$BUILD/antlr4-runtime-clang"
      cp -r "$inc" "$BUILD/antlr4-runtime-clang"
      sed -i -E 's/(std::vector<std::string> const _(literal|symbolic|display)Names);/\1{};/' \
        "$BUILD/antlr4-runtime-clang/Vocabulary.h"
      extra+=(-DANTLR4_INCLUDE_DIR="$BUILD/antlr4-runtime-clang")
    fi
    break
  fi
done

# PLINTH_FUZZ instruments every library for coverage (-fsanitize=fuzzer-no-link)
# and links the libFuzzer driver into the fuzz target only.
CC=clang CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -DPLINTH_FUZZ=ON -DPLINTH_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "${extra[@]}" >/dev/null
cmake --build "$BUILD" --target plinth-fuzz -j"$(nproc)"
FUZZER="$BUILD/plinth-fuzz"
if [[ "${1:-}" == "--build-only" ]]; then
  echo "fuzz: built $FUZZER"
  exit 0
fi

mkdir -p "$ARTIFACTS"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# Known crashers stay fixed.
shopt -s nullglob globstar
regressions=(tests/fuzz/regressions/*)
if ((${#regressions[@]})); then
  echo "fuzz: replaying ${#regressions[@]} regression input(s)"
  "$FUZZER" -timeout=10 -rss_limit_mb=2048 "${regressions[@]}"
fi

CORPUS="${FUZZ_CORPUS:-$TMP/corpus}"
mkdir -p "$CORPUS"
n=0
for f in tests/golden/**/*.plinth examples/**/*.plinth tests/fuzz/regressions/*; do
  # Some golden inputs are unreadable on purpose (P0110 tests).
  if [[ -r "$f" ]] && cp "$f" "$CORPUS/seed-$n-$(basename "$f")" 2>/dev/null; then n=$((n + 1)); fi
done
echo "fuzz: seeded $n file(s) into $CORPUS"

# Tokens of the language, so mutations produce plausible programs.
cat >"$TMP/plinth.dict" <<'EOF'
"variable"
"locals"
"output"
"module"
"region"
"bucket"
"marker"
"count"
"for_each"
"depends_on"
"lifecycle"
"source"
"each.key"
"each.value"
"count.index"
"var."
"local."
"self."
"path.module"
"for"
"in"
"if"
"true"
"false"
"null"
"=>"
"${"
"%{"
"<<EOT\x0a"
"\x0aEOT\x0a"
"<<-EOT\x0a"
"/*"
"*/"
"//"
"#"
"[*]"
"=="
"!="
"<="
">="
"&&"
"||"
"30s"
"10GiB"
"80%"
"1e3"
"\\u00e9"
"\\\""
"merge("
"length("
"range("
"format("
"jsondecode("
"regex("
"cidrsubnet("
"\"./modules/x\""
"\"std/"
"type = map(string)"
"validation { condition = true message = \"m\" }"
EOF

echo "fuzz: running $FUZZER for ${SECONDS_TO_RUN}s ($JOBS job(s))"
rc=0
args=(-max_total_time="$SECONDS_TO_RUN" -max_len=65536 -timeout=10 -rss_limit_mb=2048
  -dict="$TMP/plinth.dict" -artifact_prefix="$ARTIFACTS/" -print_final_stats=1)
if ((JOBS > 1)); then
  (cd "$TMP" && "$FUZZER" "${args[@]}" -jobs="$JOBS" -workers="$JOBS" "$CORPUS") || rc=$?
  cat "$TMP"/fuzz-*.log 2>/dev/null | grep -E "ERROR|SUMMARY|Test unit written" || true
else
  "$FUZZER" "${args[@]}" "$CORPUS" || rc=$?
fi
if ((rc != 0)); then
  echo "fuzz: FAILED (exit $rc); reproducers in $ARTIFACTS:" >&2
  ls -l "$ARTIFACTS" >&2 || true
  echo "fuzz: minimize with: $FUZZER -minimize_crash=1 -runs=10000 FILE" >&2
  exit "$rc"
fi
echo "fuzz: no crash in ${SECONDS_TO_RUN}s"
