#!/usr/bin/env bash
# README command 1: install what is missing, build, and run the main example
# against the local provider: check it, apply it, and run a restore drill on
# its datasets bucket (backup, lose every object, restore, compare).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
build/plinth validate examples/quickstart
# Applies it against the local provider (state and data under
# examples/quickstart/.plinth/, git-ignored); a second run reports no changes.
build/plinth apply --auto-approve examples/quickstart
scripts/restore-drill.sh build/plinth examples/quickstart bucket.datasets
