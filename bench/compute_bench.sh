#!/usr/bin/env bash
# Compute queue overhead (docs/benchmarks.md, "Compute"): JOBS short jobs
# (/bin/true) through a local pool of SLOTS one-CPU nodes, against the same
# processes spawned bare SLOTS at a time.
# Usage: bench/compute_bench.sh [BUILD_DIR] [JOBS] [SLOTS]   (default: build 1000 8)
set -euo pipefail
build=${1:-build}
jobs=${2:-1000}
slots=${3:-8}
exec "$build/plinth-compute-bench" "$build/plinth" "$jobs" "$slots"
