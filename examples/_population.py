"""What both example trainers share: the population flags, dpaudit's population and its member half (or, with
``--data FILE``, every row of a training file such as the one ``dpaudit canaries make`` writes), the embedded
classifier, and the written target (``OUT/model`` + ``OUT/members.json``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def add_population_args(parser: argparse.ArgumentParser) -> None:
    """``--max-examples``, ``--population-seed``, ``--seed``, ``--max-length``, ``--out``."""
    parser.add_argument("--max-examples", type=int, default=1000, help="population size N (default 1000)")
    parser.add_argument("--population-seed", type=int, default=0,
                        help="seed of dpaudit's population subset; the audit's train.seed (default 0)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the member half and of training (default 1)")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per example (default 64)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (model/ and members.json)")
    parser.add_argument("--data", type=Path, help="train on every row of this CSV/JSONL/Parquet file instead (e.g. "
                        "DIR/train.csv of `dpaudit canaries make`; audit with `dpaudit audit --canaries DIR`)")
    parser.add_argument("--text-column", default="text", help="text column of --data (default text)")
    parser.add_argument("--label-column", default="label", help="label column of --data (default label)")
    parser.add_argument("--model", default=None, help="Hugging Face encoder dir to fine-tune (default: embedded)")


class _Rows:
    """Texts and class indices read from a plain table: what a user's own training script would do."""

    def __init__(self, texts, labels, label_names):
        self.texts, self.labels, self.label_names = texts, labels, label_names
        self.num_classes, self.sha256 = len(label_names), None

    def __len__(self) -> int:
        return len(self.texts)


def training_rows(args: argparse.Namespace):
    """``(rows, members)``: dpaudit's population and its random half, or every row of ``--data`` (read with
    pandas, labels as the sorted distinct values, their names in the model's ``id2label``)."""
    if args.data is None:
        return population_and_members(args.max_examples, args.population_seed, args.seed)
    import pandas as pd

    suffix = args.data.suffix.lower()
    frame = (pd.read_csv(args.data, dtype=str) if suffix == ".csv" else pd.read_parquet(args.data)
             if suffix == ".parquet" else pd.read_json(args.data, lines=True, dtype=False))
    frame = frame.dropna(subset=[args.text_column, args.label_column])
    raw = [str(v) for v in frame[args.label_column].tolist()]
    names = tuple(sorted(set(raw)))
    labels = np.array([names.index(v) for v in raw], dtype=np.int64)
    rows = _Rows(tuple(str(t) for t in frame[args.text_column].tolist()), labels, names)
    return rows, np.arange(len(labels))


def population_and_members(max_examples: int, population_seed: int, seed: int):
    """dpaudit's population (``load_dataset(path="embedded", ...)``) and a seeded random half of it (sorted ids)."""
    from dpaudit.data import load_dataset

    ds = load_dataset(path="embedded", max_examples=max_examples, seed=population_seed)
    members = np.sort(np.random.default_rng(seed).choice(len(ds), size=len(ds) // 2, replace=False))
    return ds, members


def embedded_classifier(ds, model_dir=None):
    """The embedded encoder (or ``model_dir``) with a new classification head for ``ds``'s labels, and its
    tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from dpaudit.models import embedded_model_dir

    hf_logging.set_verbosity_error()  # "classifier newly initialized" is the point of fine-tuning
    hf_logging.disable_progress_bar()
    model_dir = model_dir or embedded_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=ds.num_classes, local_files_only=True, trust_remote_code=False,
        id2label=dict(enumerate(ds.label_names)), label2id={n: i for i, n in enumerate(ds.label_names)})
    return model, tokenizer


def write_target(args: argparse.Namespace, ds, members: np.ndarray, model, tokenizer, **facts) -> None:
    """``OUT/model`` (save_pretrained: weights + config, and the tokenizer) and ``OUT/members.json`` (the
    training ids as indices into the population, the population's recipe and hash, and ``facts``)."""
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(args.out / "model"))
    tokenizer.save_pretrained(str(args.out / "model"))
    population = {"path": "embedded", "max_examples": args.max_examples, "seed": args.population_seed,
                  "n_examples": len(ds), "dataset_sha256": ds.sha256}
    if args.data is not None:
        population = {"path": str(args.data.name), "n_examples": len(ds)}
    record = {"train": members.tolist(), "population": population, **facts, "max_length": args.max_length}
    (args.out / "members.json").write_text(json.dumps(record, indent=1) + "\n")
