"""Root test configuration: one torch thread per pytest-xdist worker.

scripts/test.sh runs the suite on ``-n 2`` workers (pytest-xdist, one per core of the 2-core CI machine); each
worker's torch would otherwise start one intra-op thread per core, 4 threads on 2 cores. Set here, before
any test module imports torch; subprocesses the tests start inherit ``OMP_NUM_THREADS``. A plain serial
``pytest`` run keeps torch's default.
"""

from __future__ import annotations

import os

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 1))


@pytest.fixture
def float64():
    """Float64 as torch's default dtype for a reference comparison, restored afterwards (other tests use
    float32). A module asks for it with ``pytestmark = pytest.mark.usefixtures("float64")``."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)
