#!/usr/bin/env bash
# Regenerates every golden expectation (diagnostics, fmt and plan output) from the
# current build, then shows what changed. Review the diff before committing.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
cmake --build "$build" --target plinth_unit_tests -j"$(nproc)" >/dev/null
PLINTH_UPDATE_GOLDEN=1 "$build/tests/plinth_unit_tests" --gtest_filter='Golden*:*Golden*' >/dev/null || true
"$build/tests/plinth_unit_tests" --gtest_filter='Golden*:*Golden*'
git --no-pager diff --stat -- tests/golden
