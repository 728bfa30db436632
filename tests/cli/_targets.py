"""Targets trained elsewhere, made in the tests: a tiny Hugging Face classifier dir and its scores files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from tests.cli._helpers import TOKENIZER_FILES, save_tiny_model, write_csv

N = 120
FAST = ["--epochs", "1", "--batch-size", "16", "--set", "data.max_length=16", "--set", "audit.fprs=[0.1]",
        "--shadows", "4", "--quiet", "--format", "md"]


def save_classifier(path: Path, backbone: Path, texts: list[str], labels: np.ndarray, members: np.ndarray, *,
                    num_labels: int = 2, steps: int = 6) -> Path:
    """A BertForSequenceClassification from ``backbone``, a few plain torch steps on ``members``, saved."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=num_labels)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ids = np.flatnonzero(members)
    for step in range(steps):
        batch = ids[(step * 16) % len(ids):][:16]
        enc = tokenizer([texts[i] for i in batch], padding=True, truncation=True, max_length=16, return_tensors="pt")
        loss = model(**enc, labels=torch.as_tensor(labels[batch] % num_labels)).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(path)
    for name in TOKENIZER_FILES:
        shutil.copy(backbone / name, path / name)
    return path


def logits_of(path: Path, texts: list[str]) -> np.ndarray:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    tokenizer = AutoTokenizer.from_pretrained(path)
    with torch.no_grad():
        enc = tokenizer(texts, padding=True, truncation=True, max_length=16, return_tensors="pt")
        return model(**enc).logits.numpy().astype(np.float32)


def make_world(root: Path) -> dict:
    """Backbone, CSV (N = 120), members (a random half), an HF classifier, and its scores files."""
    from dpaudit.data import load_dataset

    backbone = save_tiny_model(root / "bert")
    csv = write_csv(root / "reviews.csv", N)
    ds = load_dataset(path=str(csv), text_column="text", label_column="label", max_examples=None, seed=0)
    members = np.random.default_rng(5).random(N) < 0.5
    (root / "members.json").write_text(json.dumps(np.flatnonzero(members).tolist()))
    hf = save_classifier(root / "hf", backbone, list(ds.texts), ds.labels, members)
    logits = logits_of(hf, list(ds.texts))
    np.save(root / "scores.npy", logits)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    write_table(root / "probs.csv", np.arange(N), probs)
    return {"backbone": backbone, "csv": csv, "members": root / "members.json", "hf": hf, "logits": logits,
            "probs": probs, "scores": root / "scores.npy", "probs_csv": root / "probs.csv", "ds": ds, "root": root}


def write_table(path: Path, ids: np.ndarray, values: np.ndarray) -> Path:
    import pandas as pd

    frame = pd.DataFrame({"id": ids, **{f"c{j}": values[:, j] for j in range(values.shape[1])}})
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def base(world: dict) -> list[str]:
    return ["audit", "--model", str(world["backbone"]), "--data", str(world["csv"]), *FAST,
            "--target-members", str(world["members"])]
