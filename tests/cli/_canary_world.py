"""A canary round trip made in the tests: data file → ``dpaudit canaries make`` → a model trained on the
directory's training file by the Hugging Face Trainer example → the pieces ``dpaudit audit --canaries`` reads."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from tests.cli._helpers import run_cli, save_tiny_model, write_csv

ROOT_DIR = Path(__file__).resolve().parents[2]


def hf_trainer_example():
    """``examples/train_hf_trainer.py`` as a module (run in this process: no second torch start-up)."""
    path = str(ROOT_DIR / "examples")
    if path not in sys.path:
        sys.path.insert(0, path)
    return importlib.import_module("train_hf_trainer")


def make_canaries(capsys, data: Path, out: Path, *args: str) -> str:
    code, stdout, err = run_cli(capsys, ["canaries", "make", "--data", str(data), "--out", str(out), *args])
    assert code == 0, err
    return stdout


def train_on(capsys, train_file: Path, out: Path, model: Path | None, *args: str) -> Path:
    """Full fine-tune (non-private) of ``model`` (default: the embedded MiniLM) on every row of ``train_file``."""
    argv = ["--data", str(train_file), "--out", str(out), *args] + ([] if model is None else ["--model", str(model)])
    assert hf_trainer_example().main(argv) == 0
    capsys.readouterr()
    return out / "model"


def tiny_world(root: Path, capsys, *, n: int = 160, count: int = 60) -> dict:
    """A CSV of ``n`` rows, its canary directory (``count`` mislabeled) and a tiny BERT fine-tuned on it."""
    data = write_csv(root / "train.csv", n)
    make_canaries(capsys, data, root / "canaries", "--count", str(count))
    backbone = save_tiny_model(root / "bert")
    model = train_on(capsys, root / "canaries" / "train.csv", root / "target", backbone, "--epochs", "2",
                     "--max-length", "16", "--lr", "1e-3")
    return {"data": data, "dir": root / "canaries", "model": model, "backbone": backbone, "root": root}
