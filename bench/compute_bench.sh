#!/usr/bin/env bash
# Compute queue overhead (docs/benchmarks.md, "Compute"): JOBS short jobs
# (/bin/true) through a local pool of SLOTS one-CPU nodes, against the same
# processes spawned bare SLOTS at a time.
# Usage: bench/compute_bench.sh [BUILD_DIR] [JOBS] [SLOTS]   (default: build 1000 8)
set -euo pipefail
build=${1:-build}
jobs=${2:-1000}
slots=${3:-8}
# The agent a user's nodes run: plinth-node-agent, built next to plinth.
agent="$build/plinth-node-agent"
[ -x "$agent" ] || agent="$build/plinth"
exec "$build/plinth-compute-bench" "$agent" "$jobs" "$slots"
