"""Targets trained elsewhere on the embedded encoder and data (N = 120, max_length 16), for the end-to-end
tests: a non-private HF Trainer full fine-tune (``examples/train_hf_trainer.py``), an Opacus DP-BiTFiT
model (``examples/train_opacus.py``) and the HF model's logits as a black-box scores file."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
N, MAX_LENGTH = 120, 16
POPULATION = ["--max-examples", str(N), "--max-length", str(MAX_LENGTH), "--population-seed", "0", "--seed", "1"]
#: The HF target's recipe: high lr, several epochs on 60 examples — it memorises them.
HF_LR, HF_EPOCHS, HF_BATCH = 1e-4, 6, 8
AUDIT = ["audit", "--max-examples", str(N), "--set", f"data.max_length={MAX_LENGTH}", "--epochs", "2",
         "--batch-size", "16", "--shadows", "4", "--set", "audit.fprs=[0.1]", "--quiet", "--format", "md"]


def examples():
    if str(ROOT / "examples") not in sys.path:
        sys.path.insert(0, str(ROOT / "examples"))
    import train_hf_trainer
    import train_opacus

    return train_hf_trainer, train_opacus


def train_hf(out: Path) -> Path:
    hf, _ = examples()
    assert hf.main([*POPULATION, "--epochs", str(HF_EPOCHS), "--batch-size", str(HF_BATCH), "--lr", str(HF_LR),
                    "--out", str(out)]) == 0
    return out


def train_opacus(out: Path, capsys) -> dict:
    """Train with Opacus at ε = 8; the claim as the script prints it (what a user copies)."""
    _, op = examples()
    assert op.main([*POPULATION, "--epochs", "2", "--batch-size", "16", "--epsilon", "8", "--out", str(out)]) == 0
    line = re.search(r"claim: sigma=(\S+) q=(\S+) steps=(\d+) delta=(\S+) epsilon=(\S+)", capsys.readouterr().out)
    assert line, "train_opacus.py printed no claim"
    return {"sigma": line.group(1), "q": line.group(2), "steps": line.group(3), "delta": line.group(4),
            "epsilon": float(line.group(5))}


def black_box_logits(model_dir: Path) -> np.ndarray:
    """The classifier's logits on the population, computed with plain transformers (outside dpaudit)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from dpaudit.data import load_dataset

    ds = load_dataset(path="embedded", max_examples=N, seed=0)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    with torch.no_grad():
        enc = tokenizer(list(ds.texts), padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
        return model(**enc).logits.float().numpy()


def strongest(run_dir: Path):
    from dpaudit.report_io import load_report

    report = load_report(run_dir / "audit.json")
    return report, report.strongest_attack()


def members_of(path: Path) -> np.ndarray:
    return np.asarray(json.loads(path.read_text())["train"])
