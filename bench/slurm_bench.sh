#!/usr/bin/env bash
# Submit-to-running on Slurm (docs/providers/slurm.md, docs/benchmarks.md):
# with a powered-down node (resume by plinth compute resume, slurmd
# registration, Slurm's start) and with an idle node. Runs the end-to-end
# script on a throwaway cluster (root, slurm-wlm, munge) and prints its
# "slurm bench:" lines.
#
#   bench/slurm_bench.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! tests/fixtures/run-slurm-tests.sh "$build" >"$out" 2>&1; then
  cat "$out" >&2
  exit 1
fi
grep '^slurm bench:' "$out"
