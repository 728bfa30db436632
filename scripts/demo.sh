#!/usr/bin/env bash
# The main job: audit DP-BiTFiT (ε = 8) beside one model fine-tuned in full without DP (the reference) on the
# embedded model and data, with crafted canaries (configs/demo.toml); writes runs/demo/report.html.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. .venv/bin/activate
# bf16 forward where the CPU computes it natively (≈ 1.2–1.5× per training step; sums, clipping and noise stay
# float32): train.autocast is refused on other CPUs, so it is only asked for here.
if python -c "import sys; from dpaudit.trainers.loop import cpu_has_native_bf16; sys.exit(not cpu_has_native_bf16())"; then
  set -- --set train.autocast=true "$@"
fi
exec dpaudit audit --config configs/demo.toml --run-dir "${RUN_DIR:-runs/demo}" "$@"
