"""Train a target "elsewhere": a non-private full fine-tune with the Hugging Face Trainer.

The population is dpaudit's own: ``dpaudit.data.load_dataset(path="embedded", max_examples=N, seed=S)``
(N = ``--max-examples``, S = ``--population-seed``, which must equal the audit's ``train.seed``). The model
trains on a random half of it (drawn with ``--seed``) and writes:

* ``OUT/model/``: the fine-tuned ``AutoModelForSequenceClassification`` and its tokenizer (save_pretrained);
* ``OUT/members.json``: ``{"train": [ids], "population": {...}}`` — the training-example ids as indices into
  that population, which ``dpaudit audit`` reads as the target's members.

Every weight of the embedded encoder (all-MiniLM-L6-v2) trains, with no clipping and no noise: the leakiest
kind of target, the one a full-fine-tuning shadow recipe imitates. About two minutes at N = 1000 on 2 cores.

    python examples/train_hf_trainer.py --max-examples 1000 --epochs 3 --out runs/hf-target
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-examples", type=int, default=1000, help="population size N (default 1000)")
    parser.add_argument("--population-seed", type=int, default=0,
                        help="seed of dpaudit's population subset; the audit's train.seed (default 0)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the member half and of training (default 1)")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per example (default 64)")
    parser.add_argument("--epochs", type=float, default=3.0, help="training epochs (default 3)")
    parser.add_argument("--batch-size", type=int, default=16, help="examples per step (default 16)")
    parser.add_argument("--lr", type=float, default=5e-5, help="learning rate (default 5e-5)")
    parser.add_argument("--out", type=Path, required=True, help="output directory (model/ and members.json)")
    return parser.parse_args(argv)


def population_and_members(max_examples: int, population_seed: int, seed: int):
    """dpaudit's population and a seeded random half of it (sorted ids)."""
    from dpaudit.data import load_dataset

    ds = load_dataset(path="embedded", max_examples=max_examples, seed=population_seed)
    members = np.sort(np.random.default_rng(seed).choice(len(ds), size=len(ds) // 2, replace=False))
    return ds, members


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)

    from transformers.utils import logging as hf_logging

    from dpaudit.models import embedded_model_dir

    hf_logging.set_verbosity_error()  # "classifier newly initialized" is the point of fine-tuning
    hf_logging.disable_progress_bar()
    ds, members = population_and_members(args.max_examples, args.population_seed, args.seed)
    model_dir = embedded_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir, num_labels=ds.num_classes, local_files_only=True, trust_remote_code=False,
        id2label=dict(enumerate(ds.label_names)), label2id={n: i for i, n in enumerate(ds.label_names)})
    enc = tokenizer([ds.texts[i] for i in members], truncation=True, max_length=args.max_length)
    train = [{"input_ids": enc["input_ids"][j], "attention_mask": enc["attention_mask"][j],
              "labels": int(ds.labels[i])} for j, i in enumerate(members)]
    scratch = tempfile.TemporaryDirectory()  # the Trainer's output_dir; nothing is checkpointed there
    targs = TrainingArguments(output_dir=scratch.name, num_train_epochs=args.epochs,
                              per_device_train_batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
                              save_strategy="no", report_to=[], logging_strategy="no", disable_tqdm=True,
                              dataloader_num_workers=0, use_cpu=not torch.cuda.is_available())
    trainer = Trainer(model=model, args=targs, train_dataset=train, data_collator=DataCollatorWithPadding(tokenizer))
    result = trainer.train()
    args.out.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(str(args.out / "model"))  # weights + config only (no pickled training_args)
    tokenizer.save_pretrained(str(args.out / "model"))
    scratch.cleanup()
    population = {"path": "embedded", "max_examples": args.max_examples, "seed": args.population_seed,
                  "n_examples": len(ds), "dataset_sha256": ds.sha256}
    (args.out / "members.json").write_text(json.dumps({"train": members.tolist(), "population": population,
                                                       "trainer": "transformers.Trainer", "non_private": True,
                                                       "max_length": args.max_length}, indent=1) + "\n")
    print(f"trained {len(members)} of {len(ds)} examples for {args.epochs:g} epochs "
          f"(training loss {result.training_loss:.4f}); no DP claim (non-private)")
    print(f"model: {args.out / 'model'}  members: {args.out / 'members.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
