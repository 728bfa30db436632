#!/usr/bin/env bash
# The main job: audit DP-BiTFiT (ε = 8) beside a non-private reference on the embedded model and data;
# writes runs/demo/report.html.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
. .venv/bin/activate
exec dpaudit audit --config configs/demo.toml --run-dir "${RUN_DIR:-runs/demo}" "$@"
