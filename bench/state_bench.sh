#!/usr/bin/env bash
# State store backends (docs/state.md, "Backends"): operations per second of
# the PostgreSQL backend against the SQLite one, both measured in one run of
# plinth-state-bench so that the ratio compares like with like: the intent
# journal with one writer and with 8 writer threads on one store (the group
# commit), Resources() scans and Resource() lookups, workspace lock
# acquire+release pairs, and opening an existing workspace. PostgreSQL is a
# throwaway local server (tests/fixtures/postgres.sh: PostgreSQL 15 on
# 127.0.0.1, fsync on), stopped and removed on exit.
# Usage: bench/state_bench.sh [BUILD_DIR] [OPS]   (default: build 2000)
set -euo pipefail
build=$(realpath "${1:-build}")
ops=${2:-2000}
bench="$build/plinth-state-bench"
if [ ! -x "$bench" ]; then
  echo "state-bench: $bench is missing: cmake --build $build --target plinth-state-bench" >&2
  exit 1
fi
# shellcheck source-path=SCRIPTDIR source=../tests/fixtures/postgres.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tests/fixtures/postgres.sh"
trap pg_fixture_stop EXIT
pg_fixture_start
echo "state-bench: $(nproc) CPUs ($(uname -srm)); $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //' || true)"
echo "state-bench: temporary files in ${TMPDIR:-/tmp} ($(df -PT "${TMPDIR:-/tmp}" | awk 'NR == 2 { print $2 }'))"
t0=$(date +%s.%N)
status=0
"$bench" --pg="$PLINTH_TEST_PG_URL" --ops="$ops" || status=$?
t1=$(date +%s.%N)
echo "state-bench: done in $(python3 -c "print(f'{$t1-$t0:.1f}')") s"
exit "$status"
