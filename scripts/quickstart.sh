#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main example
# against the local provider: check it, then apply it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
build/plinth validate examples/quickstart
# Applies it against the local provider (state and data under
# examples/quickstart/.plinth/, git-ignored); a second run reports no changes.
build/plinth apply --auto-approve examples/quickstart
