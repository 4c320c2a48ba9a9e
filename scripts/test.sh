#!/usr/bin/env bash
# Builds everything and runs the whole test suite (unit tests, fixture checks, CLI tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 600
