"""Scoring a trained BiasBank in float32 vs a bf16 forward (``train.autocast``): time and what changes.

Loads a finished audit's bank (``models.safetensors`` of a run of ``configs/demo.toml``), scores the first
``--examples`` rows of its population with every model twice — float32 (the audit's scoring) and under
``torch.autocast(bfloat16)`` (as the bank trains with ``train.autocast``) — and reports the process CPU seconds
of each pass (their ratio is what a shared machine can measure) and the largest logit difference, the
held-out accuracy of every model and the canaries' AUC (score log p(label)) under each.

Usage (repo root, 1 thread):  python benchmarks/score_autocast.py RUN_DIR [--examples 600]
``--smoke``: no run directory; an untrained bank of 2 on 40 snippets + 10 canaries (checks the code path only).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", nargs="?")
    p.add_argument("--examples", type=int, default=600)
    p.add_argument("--smoke", action="store_true", help="untrained bank of 2, 40 snippets: the code path only")
    args = p.parse_args()
    if not args.smoke and args.run_dir is None:
        p.error("RUN_DIR is required (a finished run of configs/demo.toml), or --smoke")
    import torch
    from scipy.special import log_softmax
    from sklearn.metrics import roc_auc_score

    from dpaudit.config import load_config
    from dpaudit.pipeline.population import load_population
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.trainers.checkpoint import read_checkpoint
    from dpaudit.trainers.predict import predict_logits
    from dpaudit.trainers.recipe import build_classifier

    torch.set_num_threads(1)
    smoke = [("data", "max_examples", 40), ("audit", "canaries", 10), ("data", "max_length", 16),
             ("audit", "fprs", [0.1])] if args.smoke else []
    cfg, _ = load_config(ROOT / "configs" / "demo.toml", smoke)
    pop = load_population(cfg)
    if args.smoke:
        run, args.examples = None, 20
        membership = np.random.default_rng(0).random((2, len(pop.ds))) < 0.5
    else:
        run = Path(args.run_dir)
        tables, _, _ = read_checkpoint(run / "models.safetensors")
        membership = np.load(run / "membership.npy")
    clf = build_classifier(pop.backbone, cfg, num_models=len(membership), num_labels=pop.ds.num_classes,
                           device=torch.device("cpu"))
    if run is not None:
        clf.load_trainable_state(tables)
    encoded = EncodedTexts.from_dataset(pop.ds, pop.tokenizer, max_length=cfg.data.max_length)
    n_nat = pop.n_natural
    ex = np.r_[np.arange(args.examples), np.arange(n_nat, len(pop.ds))]  # naturals, then every canary
    out = {"run_dir": str(run) if run else "smoke", "examples": int(len(ex)), "models": int(len(membership))}
    logits = {}
    for name, on in (("float32", False), ("bf16", True)):
        t = time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=on):
            logits[name] = predict_logits(clf, encoded, examples=ex, batch_size=cfg.audit.score_batch_size)
        out[f"cpu_s_{name}"] = round(time.process_time() - t, 2)
        lg, y = logits[name], pop.ds.labels[ex]
        nat = ex < n_nat
        acc = [float((lg[k][nat].argmax(1) == y[nat])[~membership[k, ex[nat]]].mean()) for k in range(len(lg))]
        lp = log_softmax(lg[0][~nat].astype(np.float64), axis=1)[np.arange((~nat).sum()), y[~nat]]
        out[f"heldout_acc_{name}"] = [round(a, 4) for a in acc]
        out[f"target_canary_auc_{name}"] = round(float(roc_auc_score(membership[0, ex[~nat]], lp)), 4)
    stored = run / "model_logits.npy" if run else None  # the audit's own float32 scores: the same bank
    if stored is not None and stored.is_file():
        out["float32_vs_stored_max_diff"] = round(float(np.abs(np.load(stored)[:, ex] - logits["float32"]).max()), 5)
    out["max_abs_logit_diff"] = round(float(np.abs(logits["bf16"] - logits["float32"]).max()), 4)
    out["argmax_flips"] = int((logits["bf16"].argmax(2) != logits["float32"].argmax(2)).sum())
    out["ratio_bf16_over_float32"] = round(out["cpu_s_bf16"] / out["cpu_s_float32"], 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
