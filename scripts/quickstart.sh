#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main example
# against the local provider. Until the plan/apply engine lands, "run" means
# checking the example and printing every resource instance it declares.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
build/plinth validate examples/quickstart
build/plinth inspect examples/quickstart
