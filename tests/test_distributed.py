"""dpaudit.distributed and ``python -m dpaudit`` under torchrun (CPU, gloo, localhost).

The one-process pieces run in the default suite; the end-to-end jobs (real ``torchrun``, a rank with bad
input) start several interpreters each and are marked ``slow``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dpaudit import distributed
from dpaudit.errors import ConfigError
from tests.trainers import _distributed as dd

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in distributed.ENV_VARS}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return {**env, **extra}


@pytest.mark.parametrize("n", [0, 1, 5, 7, 64])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shard_rows_partition_range_in_order(n, world):
    bounds = [distributed.shard_rows(n, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1
    assert [list(range(lo, hi)) for lo, hi in bounds] == [list(x) for x in np.array_split(range(n), world)]


def test_shard_rows_refuses_a_rank_outside_the_world():
    with pytest.raises(ValueError, match=r"rank must be in \[0, 2\), got rank=2"):
        distributed.shard_rows(10, 2, 2)


def test_env_world_reads_torchrun_variables_and_refuses_nonsense():
    assert distributed.env_world({}) is None
    assert distributed.env_world({"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == distributed.WorldInfo(1, 4, 1)
    with pytest.raises(ConfigError, match=r"RANK must be in \[0, WORLD_SIZE\), got RANK=4, WORLD_SIZE=4"):
        distributed.env_world({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(ConfigError, match="must be integers"):
        distributed.env_world({"RANK": "x", "WORLD_SIZE": "2"})


def test_outside_torchrun_the_session_is_one_process_of_identities():
    import torch

    with distributed.session({}) as comm:
        assert comm is distributed.SINGLE and distributed.current() is comm and comm.is_main
        t = torch.arange(3.0)
        assert comm.all_reduce_sum_(t) is t and t.tolist() == [0.0, 1.0, 2.0]
        assert comm.broadcast_bytes(b"abc") == b"abc"
        assert comm.gather_to_rank0(np.arange(4))[0].tolist() == [0, 1, 2, 3]
        comm.agree("anything", what="inputs")


def test_check_world_size_refuses_another_number_of_processes_in_one_line():
    distributed.check_world_size(None, 4, where="runs/a")
    distributed.check_world_size(2, 2, where="runs/a")
    with pytest.raises(ConfigError, match="started with 2 processes, not 3") as err:
        distributed.check_world_size(2, 3, where="runs/a")
    assert "\n" not in str(err.value)


def test_python_dash_m_dpaudit_help_works():
    out = subprocess.run([sys.executable, "-m", "dpaudit", "--help"], capture_output=True, text=True, env=_env(),
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "train" in out.stdout and "audit" in out.stdout


def _collectives(comm, out_dir: Path) -> None:
    from safetensors.torch import save_file
    import torch

    got = comm.gather_to_rank0(np.full((comm.rank + 1, 2), comm.rank, dtype=np.int32))
    blob = comm.broadcast_bytes(b"from rank 0" if comm.is_main else None)
    arr = comm.broadcast_array(np.array([5, 6, 7]) if comm.is_main else None)
    try:
        comm.agree(f"rank-{comm.rank}" if comm.rank == 1 else "same", what="inputs")
        agreed = "yes"
    except ConfigError as err:
        agreed = str(err)
    result = {"blob": torch.frombuffer(bytearray(blob), dtype=torch.uint8), "arr": torch.from_numpy(arr),
              "agreed": torch.frombuffer(bytearray(agreed.encode()), dtype=torch.uint8)}
    if got is not None:
        result.update({f"got{r}": torch.from_numpy(g) for r, g in enumerate(got)})
    save_file(result, str(out_dir / f"rank{comm.rank}.st"))


@pytest.mark.slow
def test_collectives_on_two_ranks(tmp_path):
    from safetensors.torch import load_file

    dd.run_world(_collectives, tmp_path)
    r0, r1 = (load_file(str(tmp_path / f"rank{r}.st")) for r in range(2))
    assert r0["got0"].tolist() == [[0, 0]] and r0["got1"].tolist() == [[1, 1], [1, 1]] and "got0" not in r1
    for r in (r0, r1):
        assert bytes(r["blob"].numpy()) == b"from rank 0" and r["arr"].tolist() == [5, 6, 7]
        assert "rank 1 of 2 has other inputs than rank 0" in bytes(r["agreed"].numpy()).decode()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path]:
    from tests.cli._helpers import save_tiny_model, write_csv

    base = tmp_path_factory.mktemp("dist")
    return save_tiny_model(base / "model"), write_csv(base / "data.csv", n=80)


def _train_args(model: Path, data: Path, run_dir: Path) -> list[str]:
    return ["train", "--model", str(model), "--data", str(data), "--seeded-noise", "--seed", "3", "--epochs", "2",
            "--batch-size", "16", "--set", "privacy.noise_multiplier=1.0", "--device", "cpu", "--quiet",
            "--run-dir", str(run_dir)]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not installed")
def test_torchrun_train_equals_one_process_and_only_rank0_writes(inputs, tmp_path):
    from safetensors.torch import load_file

    model, data = inputs
    one = subprocess.run([sys.executable, "-m", "dpaudit", *_train_args(model, data, tmp_path / "one")],
                         capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=300)
    assert one.returncode == 0, one.stderr
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    two = subprocess.run([torchrun, "--nproc-per-node", "2", "--master-port", str(dd.free_port()), "-m", "dpaudit",
                          *_train_args(model, data, tmp_path / "two")],
                         capture_output=True, text=True, env=_env(OMP_NUM_THREADS="1"), cwd=ROOT, timeout=300)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("held-out accuracy") == 1  # rank 0 alone prints
    a, b = (load_file(str(tmp_path / d / "models.safetensors")) for d in ("one", "two"))
    for name in a:
        if not name.startswith("train_state."):
            np.testing.assert_allclose(a[name].numpy(), b[name].numpy(), rtol=0, atol=1e-6)
    import json

    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["world_size"] == 2


@pytest.mark.slow
def test_a_rank_with_bad_input_ends_the_job_with_its_one_line_error(inputs, tmp_path):
    """Processes started as Slurm's srun would (the torchrun variables set per process): rank 1's data file
    does not exist; it prints one line naming its rank, rank 0 stops without a second message, both non-zero."""
    model, data = inputs
    port, procs = dd.free_port(), []
    for rank, path in enumerate([data, tmp_path / "missing.csv"]):
        env = _env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port))
        procs.append(subprocess.Popen([sys.executable, "-m", "dpaudit", *_train_args(model, path, tmp_path / "run")],
                                      env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [2, 2]
    assert results[0][1].strip() == ""
    lines = results[1][1].strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: rank 1 of 2: data file") and "missing.csv" in lines[0]


@pytest.mark.slow
def test_a_command_that_cannot_run_distributed_is_refused_once_by_rank_0(tmp_path):
    port, procs = dd.free_port(), []
    for rank in range(2):
        env = _env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                   MASTER_PORT=str(port))
        procs.append(subprocess.Popen([sys.executable, "-m", "dpaudit", "env"], env=env, cwd=ROOT,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    (out0, err0), (out1, err1) = (p.communicate(timeout=300) for p in procs)
    assert [p.returncode for p in procs] == [2, 2]
    assert err0.strip().startswith("error: rank 0 of 2: `dpaudit env` runs as one process") and "\n" not in err0.strip()
    assert err1.strip() == "" and out1 == ""
