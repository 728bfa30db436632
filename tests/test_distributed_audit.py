"""``dpaudit audit`` under torchrun: the sharded shadow fleet (CPU, gloo, 2 local ranks).

One representative 2-process audit runs in the default suite (it equals the one-process audit, seeded); the
kill-and-resume jobs are ``slow``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dpaudit.cli.main import main
from dpaudit.rundir import RunDir
from tests._audit_world import audit_world
from tests.cli._helpers import assert_one_error_line, run_cli, save_tiny_model, write_csv

ARGS = ["--shadows", "4", "--seeded-noise", "--seed", "3", "--epochs", "2", "--batch-size", "16",
        "--set", "data.max_length=16", "--set", "privacy.noise_multiplier=1.0", "--set", "audit.fprs=[0.1]",
        "--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("fleet")
    return {"model": save_tiny_model(base / "model"), "data": write_csv(base / "data.csv", n=80)}


def audit_argv(assets: dict[str, Path], run_dir: Path, *, formats: str = "none") -> list[str]:
    return ["audit", "--model", str(assets["model"]), "--data", str(assets["data"]), *ARGS, "--format", formats,
            "--run-dir", str(run_dir)]


@pytest.fixture(scope="module")
def one_process(assets, tmp_path_factory) -> Path:
    """The reference: the same seeded audit in one process."""
    run_dir = tmp_path_factory.mktemp("one") / "run"
    torch.set_num_threads(1)
    assert main(audit_argv(assets, run_dir)) == 0
    return run_dir


def assert_same_audit(a: Path, b: Path) -> None:
    """Same signals (to 1e-6) and the same attack numbers."""
    sa, sb = np.load(a / "signals.npz"), np.load(b / "signals.npz")
    np.testing.assert_allclose(sa["logits"], sb["logits"], rtol=0, atol=1e-6)
    assert (sa["labels"] == sb["labels"]).all()
    ra, rb = (json.loads((d / "audit.json").read_text()) for d in (a, b))
    for x, y in zip(ra["attacks"], rb["attacks"], strict=True):
        assert x["name"] == y["name"]
        assert x["auc"] == pytest.approx(y["auc"], abs=1e-6)
        assert x["balanced_accuracy"] == pytest.approx(y["balanced_accuracy"], abs=1e-6)
    assert ra["canary"]["num_correct"] == rb["canary"]["num_correct"]


def test_sharded_audit_equals_one_process_and_commits_every_rank(assets, one_process, tmp_path):
    run_dir = tmp_path / "two"
    audit_world(audit_argv(assets, run_dir, formats="md"), tmp_path / "out")
    assert_same_audit(one_process, run_dir)
    assert (run_dir / "report.md").is_file()  # written by rank 0 inside the job's one session
    record = json.loads((run_dir / "dpaudit-run.json").read_text())
    assert record["world_size"] == 2
    rows = json.loads((run_dir / "fleet.json").read_text())["rows"]
    assert rows == [[0, 3], [3, 5]]
    for r in range(2):  # each rank's checkpoint is committed by rank 0 with the rows it holds
        entry = record["files"][f"models.rank{r}of2.safetensors"]
        assert entry["rows"] == rows[r]
        assert RunDir(run_dir, record).verified(f"models.rank{r}of2.safetensors") is not None
    assert not (run_dir / "models.safetensors").exists()


def test_a_run_dir_of_two_processes_refuses_one_in_one_line(assets, tmp_path, capsys):
    run_dir = tmp_path / "run"
    RunDir.claim(run_dir, command="audit").bind_world_size(2)
    code, _, err = run_cli(capsys, audit_argv(assets, run_dir))
    assert code == 2
    assert_one_error_line(err)
    assert "started with 2 processes, not 1" in err


@pytest.mark.slow
def test_a_killed_rank_resumes_its_rows_from_its_last_commit(assets, one_process, tmp_path):
    run_dir, out = tmp_path / "two", tmp_path / "out"
    with pytest.raises(torch.multiprocessing.ProcessExitedException):
        audit_world(audit_argv(assets, run_dir), out, hooks=(("die_after_commit", 1),))
    assert not (run_dir / "audit.json").exists()
    audit_world(audit_argv(assets, run_dir), out, hooks=("record",))
    rank1 = json.loads((out / "rank1.json").read_text())
    assert 0 < rank1["resumed_from_step"] < rank1["steps"]  # not retrained from the start
    assert_same_audit(one_process, run_dir)


@pytest.mark.slow
def test_finished_rows_are_not_retrained_after_a_kill_of_all(assets, one_process, tmp_path):
    run_dir, out = tmp_path / "two", tmp_path / "out"
    with pytest.raises(torch.multiprocessing.ProcessExitedException):
        audit_world(audit_argv(assets, run_dir), out, hooks=(("die_before_gather", 1),))
    audit_world(audit_argv(assets, run_dir), out, hooks=("record",))
    rank1 = json.loads((out / "rank1.json").read_text())
    assert rank1["resumed_from_step"] == rank1["steps"] > 0
    assert_same_audit(one_process, run_dir)


@pytest.mark.slow
def test_another_world_size_is_refused_in_one_line(assets, tmp_path, capfd):
    run_dir = tmp_path / "run"
    RunDir.claim(run_dir, command="audit").bind_world_size(2)  # as a 2-process audit leaves it
    capfd.readouterr()
    with pytest.raises(torch.multiprocessing.ProcessExitedException):
        audit_world(audit_argv(assets, run_dir), tmp_path / "out", world=3)
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == [f"error: rank 0 of 3: run directory '{run_dir}' was started with 2 processes, not 3; rerun with "
                     f"torchrun --nproc-per-node/--nnodes giving 2 processes, or use a new --run-dir."]
