"""``dpaudit train`` in-process: one end-to-end run on the embedded model, and bad input.

Bad input must end with exit code 2 and exactly one stderr line ``error: <problem and fix>``. Most
cases run on a tiny random BERT saved in a temporary directory (with the embedded tokenizer) and a
small CSV, so they cost seconds; config errors are also checked to fail before any training step.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from dpaudit.cli.main import main
from dpaudit.errors import CheckpointError
from dpaudit.models import backbone_sha256, embedded_model_dir
from dpaudit.trainers.checkpoint import read_models
from tests.cli._helpers import assert_one_error_line, run_cli, save_tiny_model, write_csv

FAST = ["--epochs", "1", "--batch-size", "16", "--set", "data.max_length=16", "--quiet"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-assets")
    return {"bert": save_tiny_model(root / "tiny-bert"), "llama": save_tiny_model(root / "tiny-llama", "llama"),
            "csv": write_csv(root / "reviews.csv")}


def test_train_embedded_end_to_end(tmp_path, capsys, train_steps):
    run_dir = tmp_path / "r"
    code, out, err = run_cli(capsys, ["train", "--max-examples", "120", "--epochs", "1", "--batch-size", "32",
                                      "--epsilon", "3", "--set", "data.max_length=24", "--run-dir", str(run_dir),
                                      "--quiet"])
    assert code == 0, err
    assert "error" not in err
    metrics = json.loads((run_dir / "metrics.json").read_text())
    n_train = metrics["n_train"]
    assert (n_train, metrics["n_heldout"]) == (96, 24)
    assert 0.0 <= metrics["heldout_accuracy"] <= 1.0
    assert metrics["non_private"] is False
    assert 0.0 < metrics["epsilon"] <= 3.0 + 1e-6
    assert metrics["delta"] == pytest.approx(1.0 / (10 * n_train))
    assert metrics["noise_multiplier"] > 0
    assert metrics["steps"] == metrics["planned_steps"] == len(train_steps) == round(1 / metrics["sample_rate"])
    assert metrics["sample_rate"] == pytest.approx(32 / n_train)
    assert metrics["epsilon_history"]["epsilons"][-1] == pytest.approx(metrics["epsilon"])
    assert f"ε = {metrics['epsilon']:.3f}" in out

    split = json.loads((run_dir / "split.json").read_text())
    assert sorted(split["train"] + split["holdout"]) == list(range(120))
    assert len(split["train"]) == n_train and split["dataset_sha256"] == metrics["dataset_sha256"]
    assert json.loads((run_dir / "config.json").read_text())["privacy"]["epsilon"] == 3.0

    sha = backbone_sha256(embedded_model_dir())
    tables, meta = read_models(run_dir / "models.safetensors", backbone_sha256=sha)
    assert meta["backbone_sha256"] == metrics["backbone_sha256"] == sha
    assert meta["num_models"] == 1 and meta["steps"] == metrics["steps"]
    assert meta["noise_multiplier"] == pytest.approx(metrics["noise_multiplier"])
    assert meta["label_names"] == ["rotten", "fresh"]
    assert tables and all(t.shape[0] == 1 and torch.isfinite(t).all() for t in tables.values())
    with pytest.raises(CheckpointError, match="trained on backbone"):
        read_models(run_dir / "models.safetensors", backbone_sha256="0" * 64)


def test_non_private_run_states_no_epsilon(tmp_path, capsys, assets):
    run_dir = tmp_path / "np"
    code, out, err = run_cli(capsys, ["train", "--model", str(assets["bert"]), "--data", str(assets["csv"]),
                                      "--non-private", "--run-dir", str(run_dir)] + FAST)
    assert code == 0, err
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epsilon"] is None and metrics["non_private"] is True
    assert metrics["noise_multiplier"] == 0.0
    assert "ε = ∞" in out
    _, meta = read_models(run_dir / "models.safetensors", backbone_sha256=backbone_sha256(assets["bert"]))
    assert meta["non_private"] is True and meta["accountant_history"] == []


def test_model_without_biases_needs_add_biases(tmp_path, capsys, assets, train_steps):
    argv = ["train", "--model", str(assets["llama"]), "--data", str(assets["csv"]), "--epsilon", "3"] + FAST
    code, _, err = run_cli(capsys, argv + ["--run-dir", str(tmp_path / "no-bias")])
    assert code == 2
    assert_one_error_line(err, "no bias terms", "--add-biases")
    assert not train_steps and not (tmp_path / "no-bias" / "models.safetensors").exists()

    run_dir = tmp_path / "add"
    code, _, err = run_cli(capsys, argv + ["--add-biases", "--run-dir", str(run_dir)])
    assert code == 0, err
    assert train_steps
    tables, meta = read_models(run_dir / "models.safetensors")
    assert meta["add_biases"] is True
    assert any("q_proj" in name for name in tables)  # a bias the LLaMA checkpoint did not have


def _bad_inputs(tmp: Path, assets: dict[str, Path]) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    """name -> (argv after 'train', fragments the error line must contain)."""
    (tmp / "empty.csv").write_text("")
    (tmp / "header.csv").write_text("text,label\n")
    (tmp / "columns.csv").write_text("review,stars\nnice,5\nbad,1\n")
    write_csv(tmp / "one-class.csv", 40, labels=("pos",))
    (tmp / "unknown-key.toml").write_text("[train]\nepochz = 2\n")
    csv = ["--data", str(assets["csv"]), "--model", str(assets["bert"])]
    return {
        "missing model dir": (["--model", "/nonexistent/model", "--data", str(assets["csv"]), "--epsilon", "3"],
                              ("'/nonexistent/model' does not exist",)),
        "missing data file": (["--data", str(tmp / "nope.csv"), "--epsilon", "3"], ("nope.csv' does not exist",)),
        "empty csv": (["--data", str(tmp / "empty.csv"), "--epsilon", "3"], ("empty.csv' could not be read",)),
        "header-only csv": (["--data", str(tmp / "header.csv"), "--epsilon", "3"], ("is empty",)),
        "missing columns": (["--data", str(tmp / "columns.csv"), "--epsilon", "3"],
                            ("no column(s) ['text', 'label']", "data.text_column")),
        "one class": (["--data", str(tmp / "one-class.csv"), "--epsilon", "3"], ("single class",)),
        "epsilon 0": (csv + ["--epsilon", "0"], ("privacy.epsilon must be in (0, 1000]", "epsilon=0.0", "non_private")),
        "epsilon -1": (csv + ["--epsilon", "-1"], ("privacy.epsilon must be in (0, 1000]", "epsilon=-1.0")),
        # PRV cannot report ε below its 0.01 discretisation (the PLD accountant reaches ε = 0 at a huge σ)
        "unreachable epsilon": (csv + ["--epsilon", "1e-4", "--set", "privacy.accountant='prv'", "--set",
                                       "privacy.neighbouring='add_remove'"], ("unreachable",)),
        "delta >= 1/N": (csv + ["--epsilon", "3", "--delta", "0.1"], ("1/N", "--force")),
        "batch > data": (csv + ["--epsilon", "3", "--batch-size", "500"],
                         ("batch_size=500 is larger than the training set",)),
        "unknown config key": (["--config", str(tmp / "unknown-key.toml")], ("unknown key 'epochz' in [train]",)),
        "unknown --set key": (["--set", "optim.learning_rate=0.1"], ("unknown key 'learning_rate' in [optim]",)),
        "missing config file": (["--config", str(tmp / "nope.toml")], ("nope.toml' does not exist",)),
        "no privacy level": (csv, ("no privacy level given",)),
        "batch size 0": (csv + ["--epsilon", "3", "--batch-size", "0"], ("train.batch_size must be in [1, 10000000]",)),
        "epochs 0": (csv + ["--epsilon", "3", "--epochs", "0"], ("train.epochs must be in (0, 10000]",)),
        "epochs nan": (csv + ["--epsilon", "3", "--epochs", "nan"], ("train.epochs must be in (0, 10000]",)),
        "negative max examples": (csv + ["--epsilon", "3", "--max-examples", "-5"],
                                  ("data.max_examples must be in [1, 10000000]",)),
        "negative lr": (csv + ["--epsilon", "3", "--set", "optim.lr=-1"], ("optim.lr must be in (0, 100]",)),
        "micro batch 0": (csv + ["--epsilon", "3", "--set", "train.micro_batch_size=0"],
                          ("train.micro_batch_size must be in [1, 65536]",)),
        "unknown device": (csv + ["--epsilon", "3", "--device", "tpu"], ("train.device must be one of",)),
        "text column = label column": (csv + ["--epsilon", "3", "--set", "data.text_column='label'"],
                                       ("both 'label'",)),
    }


BAD_INPUTS = ["missing model dir", "missing data file", "empty csv", "header-only csv", "missing columns",
              "one class", "epsilon 0", "epsilon -1", "unreachable epsilon", "delta >= 1/N", "batch > data",
              "unknown config key", "unknown --set key", "missing config file", "no privacy level", "batch size 0",
              "epochs 0", "epochs nan", "negative max examples", "negative lr", "micro batch 0", "unknown device",
              "text column = label column"]


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exits_2_with_one_error_line(case, tmp_path, capsys, assets, train_steps):
    argv, fragments = _bad_inputs(tmp_path, assets)[case]
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, ["train", *FAST, *argv, "--run-dir", str(run_dir)])
    assert code == 2
    assert_one_error_line(err, *fragments)
    assert not train_steps  # refused before the first training step
    assert not (run_dir / "models.safetensors").exists()


def test_autocast_on_a_cpu_without_bf16_exits_2(tmp_path, capsys, assets, train_steps, monkeypatch):
    from dpaudit.trainers import loop

    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: False)
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, ["train", *FAST, "--data", str(assets["csv"]), "--model", str(assets["bert"]),
                                    "--epsilon", "3", "--set", "train.autocast=true", "--device", "cpu",
                                    "--run-dir", str(run_dir)])
    assert code == 2
    assert_one_error_line(err, "train.autocast=false")
    assert not train_steps and not (run_dir / "models.safetensors").exists()


def test_large_delta_is_accepted_with_force(tmp_path, capsys, assets):
    run_dir = tmp_path / "forced"
    with pytest.warns(UserWarning, match="1/N"):
        code, _, err = run_cli(capsys, ["train", "--model", str(assets["bert"]), "--data", str(assets["csv"]),
                                        "--epsilon", "3", "--delta", "0.1", "--force", "--run-dir", str(run_dir)]
                               + FAST)
    assert code == 0, err
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["delta"] == 0.1 and metrics["epsilon"] <= 3.0 + 1e-6


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, assets) -> tuple[Path, list[str]]:
    """A finished tiny-BERT training run and the argv that produced it."""
    run_dir = tmp_path_factory.mktemp("tiny-run") / "run"
    argv = ["train", "--model", str(assets["bert"]), "--data", str(assets["csv"]), "--epsilon", "3",
            "--run-dir", str(run_dir)] + FAST
    assert main(argv) == 0
    return run_dir, argv


def _copy_run(run_dir: Path, dest: Path) -> Path:
    shutil.copytree(run_dir, dest)
    return dest


def test_truncated_checkpoint_is_reported(tmp_path, capsys, tiny_run, assets, train_steps):
    src, argv = tiny_run
    run_dir = _copy_run(src, tmp_path / "run")
    path = run_dir / "models.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        read_models(path)
    # Resuming the run checks the checkpoint against the hash the run recorded: one line, no training.
    code, _, err = run_cli(capsys, [a if a != str(src) else str(run_dir) for a in argv])
    assert code == 2
    assert_one_error_line(err, "models.safetensors", "changed after dpaudit wrote it", "--run-dir")
    assert not train_steps


def test_truncated_split_is_reported(tmp_path, capsys, tiny_run, train_steps):
    src, argv = tiny_run
    run_dir = _copy_run(src, tmp_path / "run")
    split = run_dir / "split.json"
    split.write_bytes(split.read_bytes()[:100])
    code, _, err = run_cli(capsys, [a if a != str(src) else str(run_dir) for a in argv])
    assert code == 2
    assert_one_error_line(err, "split.json", "changed after dpaudit wrote it")
    assert not train_steps


def test_checkpoint_of_another_backbone_or_format_is_refused(tmp_path, tiny_run, assets):
    run_dir, _ = tiny_run
    path = run_dir / "models.safetensors"
    tables, meta = read_models(path, backbone_sha256=backbone_sha256(assets["bert"]))
    assert meta["num_models"] == 1
    with pytest.raises(CheckpointError, match=r"trained on backbone .* use the backbone it was trained with"):
        read_models(path, backbone_sha256=backbone_sha256(embedded_model_dir()))
    with pytest.raises(CheckpointError, match="does not exist"):
        read_models(tmp_path / "missing.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="is not a dpaudit checkpoint"):
        read_models(foreign)


def test_rerun_with_other_settings_keeps_finished_run(tmp_path, capsys, tiny_run, train_steps):
    src, argv = tiny_run
    run_dir = _copy_run(src, tmp_path / "run")
    before = (run_dir / "models.safetensors").read_bytes()
    argv = [a if a != str(src) else str(run_dir) for a in argv] + ["--set", "optim.lr=0.5"]
    code, _, err = run_cli(capsys, argv)
    assert code == 2
    assert_one_error_line(err, "holds a run of other inputs (config.optim.lr differs)", "--run-dir")
    assert not train_steps
    assert (run_dir / "models.safetensors").read_bytes() == before
