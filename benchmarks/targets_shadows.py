"""Targets trained elsewhere, audited with ``bitfit`` vs ``full`` shadows on one population (issue 10).

Four targets on the embedded task (population: ``load_dataset("embedded", max_examples=N, seed=0)``):

* ``dp-checkpoint``: ``dpaudit train --epsilon 8`` (DP-BiTFiT; its claim and recipe from the checkpoint);
* ``hf-trainer``: ``examples/train_hf_trainer.py`` (non-private full fine-tune with the HF Trainer; no claim,
  ``target.recipe = "full"``, the full shadows use its lr and optimizer);
* ``opacus``: ``examples/train_opacus.py --epsilon 8`` (Opacus, biases + head; the claim σ/q/steps/δ it
  prints, stated by the user, ``target.recipe = "bitfit"``);
* ``scores``: the ``hf-trainer`` target's logits on the population, computed here with ``transformers``
  (black box).

Each is audited twice, ``--shadow-recipe bitfit`` and ``--shadow-recipe full``, with K shadows (same
population and membership draw); the table gives the strongest attack's (the report's verdict: highest
balanced accuracy) AUC and TPR at 1% FPR, and ``run.target.recipe_differs``. One torch thread.

Usage (from the repo root, by hand; ~20 CPU-minutes at the defaults on a 2-core machine):
    python benchmarks/targets_shadows.py [--population 400] [--shadows 4] [--max-length 32] [--epochs 2]
Writes benchmarks/results/targets_shadows.json and prints a Markdown table.
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
sys.path.insert(0, str(ROOT / "examples"))


def _cli(argv: list[str]) -> None:
    from dpaudit.cli.main import main

    code = main(argv)
    if code:
        raise SystemExit(f"dpaudit {' '.join(argv)} exited {code}")


def make_targets(work: Path, a) -> dict[str, tuple[list[str], list[str]]]:
    """Train the targets; return each one's ``dpaudit audit`` target flags, and those for ``full`` shadows only
    (the target's recipe as its user states it: ``bitfit`` shadows keep dpaudit's own lr)."""
    import train_hf_trainer
    import train_opacus

    common = ["--max-examples", str(a.population), "--max-length", str(a.max_length), "--population-seed", "0",
              "--seed", "1"]
    _cli(["train", "--epsilon", "8", "--max-examples", str(a.population), "--epochs", str(a.epochs), "--batch-size",
          str(a.batch_size), "--set", f"data.max_length={a.max_length}", "--set", "data.holdout_fraction=0.5", "--quiet",
          "--run-dir", str(work / "dp")])  # half the population trains, like the other targets
    train_hf_trainer.main([*common, "--epochs", str(a.epochs), "--batch-size", "16", "--lr", str(a.hf_lr),
                           "--out", str(work / "hf")])
    train_opacus.main([*common, "--epochs", str(int(a.epochs)), "--batch-size", str(a.batch_size), "--epsilon", "8",
                       "--out", str(work / "opacus")])
    claim = json.loads((work / "opacus" / "members.json").read_text())["claim"]
    np.save(work / "scores.npy", hf_logits(work / "hf" / "model", a.population, a.max_length))
    hf_full = ["--target-recipe", "full", "--set", f"optim.lr={a.hf_lr}", "--set", "optim.optimizer=adamw"]
    members = ["--target-members", str(work / "hf" / "members.json"), "--batch-size", "16"]
    opacus_claim = ["--claim-noise-multiplier", repr(claim["noise_multiplier"]), "--claim-sample-rate",
                    repr(claim["sample_rate"]), "--claim-steps", str(claim["steps"]), "--claim-delta",
                    repr(claim["delta"])]
    return {
        "dp-checkpoint": (["--target", str(work / "dp" / "models.safetensors"), "--target-members",
                           str(work / "dp" / "split.json")], []),
        "hf-trainer": (["--target", str(work / "hf" / "model"), *members], hf_full),
        "opacus": (["--target", str(work / "opacus" / "model"), "--target-members",
                    str(work / "opacus" / "members.json"), "--target-recipe", "bitfit", *opacus_claim], []),
        "scores": (["--target", str(work / "scores.npy"), *members], hf_full),
    }


def hf_logits(model_dir: Path, n: int, max_length: int) -> np.ndarray:
    """The black box: the classifier's logits on the population, computed outside dpaudit."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from dpaudit.data import load_dataset

    ds = load_dataset(path="embedded", max_examples=n, seed=0)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    out = []
    with torch.no_grad():
        for i in range(0, n, 64):
            enc = tokenizer(list(ds.texts[i:i + 64]), padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            out.append(model(**enc).logits.float().numpy())
    return np.concatenate(out).astype(np.float32)


def audit(work: Path, name: str, recipe: str, flags: list[str], a) -> dict:
    from dpaudit.report_io import load_report

    run_dir = work / f"audit-{name}-{recipe}"
    t0 = time.perf_counter()
    _cli(["audit", "--max-examples", str(a.population), "--set", f"data.max_length={a.max_length}", "--epochs",
          str(a.epochs), "--batch-size", str(a.batch_size), "--shadows", str(a.shadows), "--shadow-recipe", recipe,
          "--set", f"audit.fprs=[{a.fpr}]", "--quiet", "--format", "none", "--run-dir", str(run_dir), *flags])
    report = load_report(run_dir / "audit.json")
    best = report.strongest_attack()
    tpr = next((t.tpr for t in best.tpr_at_fpr if abs(t.fpr - a.fpr) < 1e-12), None)
    return {"target": name, "shadow_recipe": recipe, "strongest": best.name, "auc": best.auc, "tpr_at_1pct": tpr,
            "max_auc": max(x.auc for x in report.attacks if x.auc is not None),
            "recipe_differs": report.run.target["recipe_differs"], "claim_source": report.privacy.claim_source,
            "epsilon": report.privacy.epsilon, "target_accuracy": report.utility.value,
            "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--population", type=int, default=400)
    ap.add_argument("--shadows", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=32)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--hf-lr", type=float, default=1e-4)
    ap.add_argument("--fpr", type=float, default=0.01, help="FPR of the TPR column (needs ≥ 1/fpr non-members)")
    ap.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-targets")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "targets_shadows.json")
    ap.add_argument("--smoke", action="store_true", help="80 examples, seq 8, 1 epoch, batch 8, FPR 0.1, in a "
                    "temporary directory: checks the script (minutes: 8 audits); writes no file")
    a = ap.parse_args()
    if a.smoke:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            a.population, a.max_length, a.epochs, a.batch_size, a.fpr = 80, 8, 1.0, 8, 0.1
            a.work, a.out = Path(tmp), None
            _bench(a)
        return
    _bench(a)


def _bench(a) -> None:
    import torch

    from _machine import cpu_model  # benchmarks/ is sys.path[0] when a script runs

    torch.set_num_threads(1)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    a.work.mkdir(parents=True, exist_ok=True)
    t0, load0 = time.perf_counter(), os.getloadavg()
    targets = make_targets(a.work, a)
    rows = [audit(a.work, name, recipe, [*flags, *(full_only if recipe == "full" else [])], a)
            for name, (flags, full_only) in targets.items() for recipe in ("bitfit", "full")]
    record = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu_model(), "torch_threads": 1,
              "load_before": load0, "load_after": os.getloadavg(), "total_s": time.perf_counter() - t0,
              "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}, "rows": rows}
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"| target | shadows | strongest attack | AUC | TPR@{a.fpr:g} FPR | max AUC | recipe_differs | claim | wall s |")
    print("|---|---|---|---:|---:|---:|---|---|---:|")
    for r in rows:
        tpr = "n/a" if r["tpr_at_1pct"] is None else f"{r['tpr_at_1pct']:.3f}"
        eps = "none" if r["epsilon"] is None else f"{r['claim_source']} ε={r['epsilon']:.2f}"
        print(f"| {r['target']} | {r['shadow_recipe']} | {r['strongest']} | {r['auc']:.3f} | {tpr} | "
              f"{r['max_auc']:.3f} | {r['recipe_differs']} | {eps} | {r['wall_s']:.0f} |")
    print(f"total {record['total_s']:.0f} s; load {load0} → {record['load_after']}")


if __name__ == "__main__":
    main()
