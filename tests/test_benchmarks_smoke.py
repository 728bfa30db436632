"""Every benchmark script runs at its smallest size (``--smoke``) and writes nothing: an API change that
breaks a benchmark fails here, not months later by hand (``audit_power.py`` once called
``evaluate_attack(..., seed=0)`` after ``seed`` was removed, and ``cpu_step.py``/``gpu_step.py`` built the
``DPAggregator`` with ``seeds=`` after it took ``sources=``).

The cheap ones (seconds each) are in the default selection; the ones that train several models are
``slow``. ``gpu_step.py --smoke`` is its CPU path (tiny BERT, the Triton kernels in interpreter mode);
its CUDA timings need a GPU and are not run here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
CHEAP = ("bounds_compare", "comm_bytes", "noise_cost")  # seconds each
SLOW = ("audit_power", "canaries_reference", "cpu_step", "fleet_wall", "gpu_step", "head_probe", "images", "lm_step",
        "score_autocast",
        "targets_shadows", "utility",
        "verify_tightness")  # ~0.5-2 min each on one core (gpu_step: the Triton interpreter)


def _snapshot() -> dict[str, float]:
    files = [BENCH / "RESULTS.md", *sorted((BENCH / "results").rglob("*"))]
    return {str(p): p.stat().st_mtime_ns for p in files if p.is_file()}


def test_every_benchmark_script_has_a_smoke_test():
    scripts = {p.stem for p in BENCH.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(CHEAP) | set(SLOW), "add the new benchmark to CHEAP or SLOW (and give it --smoke)"
    for name in scripts:
        assert "--smoke" in (BENCH / f"{name}.py").read_text(encoding="utf-8"), name


def _run_smoke(name: str, tmp_path: Path) -> None:
    before = _snapshot()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), "--smoke"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1200)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "error:" not in done.stdout, done.stdout[-4000:]  # a method that failed inside the table
    assert _snapshot() == before, "--smoke must not write benchmarks/RESULTS.md or benchmarks/results/"
    assert list(tmp_path.iterdir()) == [], f"--smoke left files in the working directory: {list(tmp_path.iterdir())}"


@pytest.mark.parametrize("name", CHEAP)
def test_cheap_benchmark_smoke(name, tmp_path):
    _run_smoke(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_slow_benchmark_smoke(name, tmp_path):
    _run_smoke(name, tmp_path)
