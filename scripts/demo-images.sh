#!/usr/bin/env bash
# The image demo: audit DP-BiTFiT (ε = 8) on the embedded Fashion-MNIST task (5 classes) with the project's own
# pretrained ConvNeXt, beside one non-private full fine-tune, with mislabeled canaries (configs/demo-images.toml);
# writes runs/demo-images/report.html with the canary pictures. Setup (the .deb of the image task) included.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --images
. .venv/bin/activate
exec dpaudit audit --config configs/demo-images.toml --run-dir "${RUN_DIR:-runs/demo-images}" "$@"
