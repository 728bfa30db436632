"""Crafted canaries against three trainings: full fine-tuning (non-private), BiTFiT (non-private), DP-BiTFiT.

Issue 22's benchmark, at the demo's size: the embedded population (``max_examples`` rows, seed 0), m
canaries of a kind made from it (:func:`dpaudit.canaries.make_canaries`, seed 0) appended last, one
membership row drawn by a seeded fair coin per row (naturals and canaries alike: a benchmark, not a
release). One model per setting on that row:

* ``full``: every weight of the backbone plus a new head, non-private, AdamW (:func:`trainers.full.train_full`;
  the ``audit.reference = "full_non_private"`` recipe: ``--full-lr``, batch 32, ``--full-epochs``);
* ``bitfit``: non-private BiTFiT with ``configs/demo.toml``'s optimizer (the ``"non_private"`` reference);
* ``dp8``/``dp3``/``dp1``: DP-BiTFiT at ε = 8 / 3 / 1 with ``configs/demo.toml`` (the audited target).

Per model: held-out accuracy on the natural non-members, the canaries' AUC with the score ``log p(canary
label)`` (no shadows), and the one-run ε lower bound (arXiv 2305.08846 v1) at 95 % at each guess fraction.

Usage (from the repo root; one torch thread; ~2–4 CPU-minutes per model at the defaults):
    python benchmarks/canaries_reference.py [--population 1500] [--canaries 400] [--kind mislabeled]
        [--settings full,bitfit,dp8] [--full-epochs 3] [--max-length 48] [--out results/canaries_reference.json]
Prints one JSON line per model and writes them all to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GUESS_FRACTIONS = (0.1, 0.2, 0.4)


def _population(n: int, m: int, kind: str):
    from dpaudit.canaries import make_canaries, with_canaries
    from dpaudit.data import load_dataset

    ds = load_dataset(path="embedded", max_examples=n, seed=0)
    natural, canaries = make_canaries(ds, m, kind, seed=0)
    pop = with_canaries(natural, canaries)
    row = np.random.default_rng(12345).random(len(pop)) < 0.5
    return pop, len(natural), row


def _logits_full(pop, row, args) -> np.ndarray:
    from dpaudit.models import load_backbone
    from dpaudit.pipeline.full_reference import full_reference_recipe
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.trainers.full import classifier_logits, train_full

    _, tokenizer, _ = load_backbone(None)
    encoded = EncodedTexts.from_dataset(pop, tokenizer, max_length=args.max_length)
    recipe = full_reference_recipe(int(row.sum()), epochs=args.full_epochs, batch_size=32, lr=args.full_lr,
                                   max_length=args.max_length)
    model = train_full(None, encoded, pop.labels, row, pop.num_classes, recipe, seed=7, device="cpu")
    return classifier_logits(model, encoded, device="cpu", batch_size=256)


def _logits_bitfit(pop, row, args, setting: str) -> np.ndarray:
    from dpaudit.config import load_config
    from dpaudit.models import load_backbone
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.trainers.predict import predict_logits
    from dpaudit.trainers.recipe import build_classifier, resolve_privacy, train_bank

    over = [("data", "max_length", args.max_length), ("train", "seed", 0)]
    over += [("privacy", "non_private", True), ("privacy", "epsilon", None)] if setting == "bitfit" else [
        ("privacy", "epsilon", float(setting[2:]))]
    cfg, _ = load_config(ROOT / "configs" / "demo.toml", over)
    backbone, tokenizer, _ = load_backbone(None)
    encoded = EncodedTexts.from_dataset(pop, tokenizer, max_length=args.max_length)
    settings, plan = resolve_privacy(cfg, [int(row.sum())])
    clf = build_classifier(backbone, cfg, num_models=1, num_labels=pop.num_classes, device="cpu")
    train_bank(clf, encoded, pop.labels, row[None], settings, plan, seeds=[7], run=None, meta={}, progress=False)
    return predict_logits(clf, encoded, batch_size=256)[0]


def _measure(logits: np.ndarray, pop, n_natural: int, row: np.ndarray) -> dict:
    from scipy.special import log_softmax
    from sklearn.metrics import roc_auc_score

    from dpaudit.attacks.canary import canary_audit

    logp = log_softmax(logits.astype(np.float64), axis=1)[np.arange(len(pop)), pop.labels]
    held = ~row[:n_natural]
    acc = float((logits[:n_natural].argmax(1) == pop.labels[:n_natural])[held].mean())
    scores, included = logp[n_natural:], row[n_natural:]
    out = {"held_out_accuracy": round(acc, 4), "canary_auc": round(float(roc_auc_score(included, scores)), 4),
           "canary_fit_in": round(float((logits[n_natural:].argmax(1) == pop.labels[n_natural:])[included].mean()), 4)}
    for g in GUESS_FRACTIONS:
        lb = canary_audit(scores, included, delta=1e-5, significance=0.05, guess_fraction=g).to_dict()
        out[f"eps_lb_g{g}"] = round(float(lb["epsilon_lb"]), 3)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--population", type=int, default=1500)
    p.add_argument("--canaries", type=int, default=400)
    p.add_argument("--kind", default="mislabeled")
    p.add_argument("--settings", default="full,bitfit,dp8")
    p.add_argument("--full-epochs", type=float, default=3.0)
    p.add_argument("--full-lr", type=float, default=5e-5)
    p.add_argument("--max-length", type=int, default=48)
    p.add_argument("--out", default="benchmarks/results/canaries_reference.json")
    p.add_argument("--smoke", action="store_true", help="smallest size (seconds), writes no results file")
    args = p.parse_args()
    if args.smoke:
        args.population, args.canaries, args.full_epochs, args.max_length = 120, 20, 1.0, 16
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    pop, n_natural, row = _population(args.population, args.canaries, args.kind)
    rows = []
    for setting in args.settings.split(","):
        t = time.perf_counter()
        logits = _logits_full(pop, row, args) if setting == "full" else _logits_bitfit(pop, row, args, setting)
        rec = {"setting": setting, "population": len(pop), "natural": n_natural, "canaries": args.canaries,
               "kind": args.kind, "trained_on": int(row.sum()), "max_length": args.max_length,
               **({"epochs": args.full_epochs, "lr": args.full_lr} if setting == "full" else {}),
               **_measure(logits, pop, n_natural, row), "wall_s": round(time.perf_counter() - t, 1)}
        print(json.dumps(rec), flush=True)
        rows.append(rec)
    if args.smoke:
        return
    out = Path(args.out)
    old = json.loads(out.read_text()) if out.is_file() else []
    out.write_text(json.dumps(old + rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
