#!/usr/bin/env bash
# Installs dependencies, builds, and describes the bundled test image with the
# bundled tiny Qwen2-VL checkpoint (random weights: the answer is noise by design).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build/vlm run --model testdata/fixtures/qwen2_vl/model \
  --image testdata/fixtures/qwen2_vl/cases/single_image/a_84x56.png \
  --prompt "Describe this image." --max-tokens 16 --stats
