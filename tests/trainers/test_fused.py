"""The fused Triton kernels (:mod:`trainers.fused`) against the torch path, on CPU and on CUDA.

The cases live in ``fused_cases.py`` and run in a subprocess: Triton's interpreter is chosen by
``TRITON_INTERPRET=1`` at the moment ``triton`` is first imported, so it cannot be switched on inside a
pytest process that may already have imported triton (or must not, for the CUDA run). The subprocess
also keeps global state of other test modules (e.g. a float64 default dtype) out of these cases.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
CASES = Path(__file__).with_name("fused_cases.py")


def _run_cases(*, interpret: bool, timeout: float) -> str:
    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not installed (pip install 'dpaudit[gpu]')")
    env = dict(os.environ)
    env.pop("TRITON_INTERPRET", None)
    if interpret:
        env.update(TRITON_INTERPRET="1", CUDA_VISIBLE_DEVICES="")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [env.get("PYTHONPATH")] if p])
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(CASES)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    report = f"$ {' '.join(cmd)}\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, report
    summary = proc.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "skipped" not in summary, report
    return summary


def test_fused_kernels_match_torch_path_under_triton_interpreter():
    _run_cases(interpret=True, timeout=240)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fused_kernels_match_torch_path_on_cuda():
    _run_cases(interpret=False, timeout=600)
