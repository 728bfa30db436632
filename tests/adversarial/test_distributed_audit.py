"""Adversarial: the sharded shadow fleet must not reuse another run's per-rank file, accept an altered one,
or lose a rank's rows on the way to rank 0 (dpaudit.pipeline.fleet)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from dpaudit.errors import ConfigError, DataError
from dpaudit.pipeline import fleet
from dpaudit.rundir import RunDir
from tests._audit_world import audit_world
from tests.test_distributed_audit import assets, audit_argv  # noqa: F401  (module fixture)

BINDING = {"fleet": "a" * 32, "inputs_sha256": "b" * 64, "rows": [3, 5], "rank": 1, "world_size": 2}


def test_a_shard_marker_of_another_fleet_is_not_reused(tmp_path):
    shard = fleet.ShardRun.open(tmp_path, 1, 2, BINDING)
    shard.write("models.safetensors", b"trained by fleet a")
    assert (tmp_path / "models.rank1of2.safetensors").read_bytes() == b"trained by fleet a"
    assert fleet.ShardRun.open(tmp_path, 1, 2, BINDING).verified("models.safetensors") is not None
    for other in ({**BINDING, "fleet": "c" * 32}, {**BINDING, "inputs_sha256": "d" * 64}, {**BINDING, "rows": [2, 5]}):
        assert fleet.ShardRun.open(tmp_path, 1, 2, other).verified("models.safetensors") is None
        fleet.ShardRun.open(tmp_path, 1, 2, BINDING).write("models.safetensors", b"trained by fleet a")


def test_an_altered_per_rank_file_is_refused(tmp_path):
    fleet.ShardRun.open(tmp_path, 1, 2, BINDING).write("models.safetensors", b"trained")
    (tmp_path / "models.rank1of2.safetensors").write_bytes(b"swapped")
    with pytest.raises(ConfigError, match="changed after dpaudit wrote it"):
        fleet.ShardRun.open(tmp_path, 1, 2, BINDING).verified("models.safetensors")


def test_a_rank_cannot_write_into_rank_0s_marker(tmp_path):
    run = RunDir.claim(tmp_path, command="audit")
    before = (tmp_path / "dpaudit-run.json").read_bytes()
    fleet.ShardRun.open(tmp_path, 1, 2, BINDING).write("models.safetensors", b"x")
    assert (tmp_path / "dpaudit-run.json").read_bytes() == before and run.entry("models.safetensors") is None


def test_a_rank_that_sends_fewer_rows_is_refused_not_dropped():
    good = [np.zeros((3, 4, 2), np.float32), np.ones((2, 4, 2), np.float32)]
    assert fleet.assemble(good, (5, 4, 2), 2).shape == (5, 4, 2)
    with pytest.raises(DataError, match="rank 1 of 2 returned logits of shape"):
        fleet.assemble([good[0], good[1][:1]], (5, 4, 2), 2)
    with pytest.raises(DataError, match="rank 0 of 2"):
        fleet.assemble([good[0][:2], good[1]], (5, 4, 2), 2)


def test_a_per_rank_file_damaged_on_the_wire_is_refused():
    packed = fleet.pack({"models.safetensors": b"abc", "other.bin": b"de"})
    assert fleet.unpack(packed, rank=1) == {"models.safetensors": b"abc", "other.bin": b"de"}
    bad = packed.copy()
    bad[-1] ^= 1
    with pytest.raises(DataError, match="rank 1's 'other.bin' arrived damaged"):
        fleet.unpack(bad, rank=1)


@pytest.mark.slow
def test_another_runs_per_rank_file_is_not_reused(assets, tmp_path):  # noqa: F811
    first, second, out = tmp_path / "first", tmp_path / "second", tmp_path / "out"
    audit_world(audit_argv(assets, first), out)
    RunDir.claim(second, command="audit")
    for name in ("models.rank1of2.safetensors", "dpaudit-run.rank1of2.json"):  # same inputs, other run dir
        shutil.copy(first / name, second / name)
    audit_world(audit_argv(assets, second), out, hooks=("record",))
    assert json.loads((out / "rank1.json").read_text())["resumed_from_step"] == 0


@pytest.mark.slow
def test_a_tampered_per_rank_checkpoint_ends_the_job_with_that_ranks_line(assets, tmp_path, capfd):  # noqa: F811
    run_dir, out = tmp_path / "run", tmp_path / "out"
    with pytest.raises(torch.multiprocessing.ProcessExitedException):
        audit_world(audit_argv(assets, run_dir), out, hooks=(("die_after_commit", 1),))
    path = run_dir / "models.rank1of2.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    capfd.readouterr()
    with pytest.raises(torch.multiprocessing.ProcessExitedException):
        audit_world(audit_argv(assets, run_dir), out)
    lines = [x for x in capfd.readouterr().err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith("error: rank 1 of 2: ") and "changed after dpaudit" in lines[0]
    assert not (run_dir / "audit.json").exists()
