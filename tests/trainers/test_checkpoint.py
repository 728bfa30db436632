"""The one-file checkpoint on its own: round trip, what a release reader sees, refusals."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from dpaudit.errors import CheckpointError, ConfigError
from dpaudit.rundir import RunDir
from dpaudit.trainers import checkpoint as ckpt


def _tables() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"encoder.layer.0.output.dense": torch.randn(2, 5, generator=g),
            "head.weight": torch.randn(2, 3, 4, generator=g), "head.bias": torch.zeros(2, 3)}


def _optimizer() -> torch.optim.Optimizer:
    params = [torch.nn.Parameter(torch.randn(3)), torch.nn.Parameter(torch.randn(2, 2))]
    opt = torch.optim.Adam(params, lr=0.1)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.step()
    return opt


META = {"steps": 7, "accountant_history": [[1.1, 0.25, 7]], "backbone_sha256": "ab" * 32, "noise": ["secure"]}


def test_round_trip_keeps_tables_state_and_meta_in_one_file(tmp_path):
    run = RunDir.claim(tmp_path / "run", command="train")
    opt = _optimizer()
    path = ckpt.save_checkpoint(run, _tables(), ckpt.optimizer_tensors(opt), META)
    assert sorted(p.name for p in run.path.iterdir()) == ["dpaudit-run.json", ckpt.MODELS_FILE]
    assert run.entry(ckpt.MODELS_FILE)["steps"] == 7
    tables, state, meta = ckpt.read_checkpoint(path)
    assert meta == META
    for name, value in _tables().items():
        assert torch.equal(tables[name], value)
    fresh = torch.optim.Adam([torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2))], lr=0.1)
    ckpt.restore_optimizer(fresh, state, opt.state_dict()["param_groups"], torch.device("cpu"))
    for a, b in zip(opt.state_dict()["state"].values(), fresh.state_dict()["state"].values()):
        assert all(torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) for k in a)


def test_release_reader_sees_tables_only_and_checks_the_backbone(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(ckpt.checkpoint_bytes(_tables(), ckpt.optimizer_tensors(_optimizer()), META))
    tables, meta = ckpt.read_models(path, backbone_sha256="ab" * 32)
    assert set(tables) == set(_tables()) and meta["steps"] == 7
    with pytest.raises(CheckpointError, match="trained on backbone abababababab"):
        ckpt.read_models(path, backbone_sha256="cd" * 32)


@pytest.mark.parametrize("damage", ["missing", "truncated", "foreign", "bad-meta"])
def test_unreadable_checkpoints_are_refused_with_one_line(tmp_path, damage):
    path = tmp_path / "m.safetensors"
    data = ckpt.checkpoint_bytes(_tables(), {}, META)
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "foreign":
        save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "other"})
    elif damage == "bad-meta":
        save_file({"w": torch.zeros(2)}, str(path), metadata={"format": ckpt.CHECKPOINT_FORMAT, "meta": "[1"})
    match = {"missing": "does not exist", "truncated": "corrupt or truncated", "foreign": "not a dpaudit checkpoint",
             "bad-meta": "unreadable metadata"}[damage]
    with pytest.raises(CheckpointError, match=match) as err:
        ckpt.read_checkpoint(path)
    assert "\n" not in str(err.value)


def test_resume_refuses_other_settings_seeds_or_backbone(tmp_path):
    meta = {**META, "settings": {"lr": 0.1}, "seeds": [None]}
    ckpt.check_resumable(meta, settings={"lr": 0.1}, seeds=[None], backbone_sha256="ab" * 32, where=tmp_path)
    for kw, match in (({"settings": {"lr": 0.2}}, "other settings"), ({"seeds": [3]}, "other settings"),
                      ({"backbone_sha256": "cd" * 32}, "another backbone")):
        args = {"settings": {"lr": 0.1}, "seeds": [None], "backbone_sha256": "ab" * 32, **kw}
        with pytest.raises(ConfigError, match=match):
            ckpt.check_resumable(meta, where=tmp_path, **args)
    assert json.loads(json.dumps(meta)) == meta  # the metadata is plain JSON
