#!/usr/bin/env bash
# Configures and builds Plinth into ./build (Release, with tests).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-Release} >/dev/null
cmake --build build -j"$(nproc)"
