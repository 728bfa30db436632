"""Attack power and audit cost on the embedded task: non-private BiTFiT vs DP-BiTFiT at ε = 8 and ε = 1.

For each privacy level one audit trains the target and K_max shadows in one BiasBank pass
(``dpaudit.pipeline.run_audit``), then the attacks are evaluated with the first K ∈ {4, 8, 16} shadows.
Shadow rows are trained independently (own sampling and noise generators, complementary pairs), so the
first K rows of a K_max bank are exactly a K-shadow audit; the training wall time of a K-shadow audit is
reported as the measured K_max time × (K+1)/(K_max+1) (training cost is linear in the number of rows),
scoring likewise, attack time measured.

Usage (from the repo root, run by hand; ~1 h on a 2-core CPU at the defaults):
    python benchmarks/audit_power.py [--population 2000] [--epochs 2] [--shadows 4 8 16]
Writes benchmarks/results/audit_power.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from dpaudit.pipeline import run_audit
from dpaudit.attacks.canary import canary_audit
from dpaudit.attacks.evaluate import evaluate_attack
from dpaudit.attacks.registry import create_attack
from dpaudit.attacks.signals import Signals
from dpaudit.config import load_config

LEVELS = {"non-private": {"non_private": True}, "eps=8": {"epsilon": 8.0}, "eps=1": {"epsilon": 1.0}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--population", type=int, default=2000)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--max-length", type=int, default=48)
    ap.add_argument("--shadows", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    ap.add_argument("--runs", default="runs/bench-audit", help="run directories (resumable)")
    ap.add_argument("--out", default="benchmarks/results/audit_power.json")
    ap.add_argument("--smoke", action="store_true", help="80 examples, ε = 8 only, K = 4, 1 epoch, seq 16, in a "
                    "temporary directory: checks the script; writes no file")
    args = ap.parse_args()
    if args.smoke:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            args.population, args.epochs, args.batch_size, args.max_length = 80, 1.0, 16, 16
            args.shadows, args.levels, args.runs, args.out = [4], ["eps=8"], tmp, None
            _bench(args)
        return
    _bench(args)


def _bench(args) -> None:
    k_max = max(args.shadows)
    rows = []
    for level in args.levels:
        overrides = [("data", "max_examples", args.population), ("data", "max_length", args.max_length),
                     ("train", "epochs", args.epochs), ("train", "batch_size", args.batch_size),
                     ("train", "micro_batch_size", 128), ("optim", "lr", args.lr),
                     ("audit", "num_shadows", k_max)]
        if args.population < 2000:  # 1/FPR non-members are needed: drop the FPRs this N cannot resolve
            overrides.append(("audit", "fprs", [f for f in (0.001, 0.01, 0.1) if args.population >= 2 / f]))
        overrides += [("privacy", k, v) for k, v in LEVELS[level].items()]
        cfg, _ = load_config(None, overrides)
        run_dir = Path(args.runs) / level
        out = run_audit(cfg, run_dir, progress=True)
        report = out.report
        signals = Signals.load(run_dir / "signals.npz")
        membership = np.load(run_dir / "membership.npy")
        wall = report.run.wall_time_s
        for k in args.shadows:
            m = k + 1
            sub = Signals(signals.logits[:m], signals.labels)
            t = time.perf_counter()
            results = [evaluate_attack(name, sub, membership[:m], targets=tuple(range(min(4, m))),
                                       delta=report.privacy.delta, significance=0.05)
                       for name in cfg.audit.attacks]
            canary = canary_audit(create_attack("lira_offline").score(sub, membership[:m], target=0,
                                                                      reference=np.arange(1, m)),
                                  membership[0], delta=report.privacy.delta, significance=0.05)
            attack_s = time.perf_counter() - t
            best = max((r for r in results if r.status == "ok"), key=lambda r: r.balanced_accuracy)
            scale = m / (k_max + 1)
            rows.append({
                "level": level, "shadows": k, "epsilon": report.privacy.epsilon, "delta": report.privacy.delta,
                "utility": report.utility.value,
                "attacks": {r.name: {"auc": r.auc, "auc_std": r.auc_std, "balanced_accuracy": r.balanced_accuracy,
                                     "tpr_at_1pct": r.tpr_at(0.01).tpr if r.tpr_at(0.01) else None,
                                     "epsilon_lb": r.epsilon_lb.get("epsilon_lb")} for r in results},
                "strongest": best.name, "canary_epsilon_lb": canary.epsilon_lb,
                "wall_time_s": {"train": wall["train"] * scale, "score": wall.get("score", 0.0) * scale,
                                "attack": attack_s,
                                "total": wall["train"] * scale + wall.get("score", 0.0) * scale + attack_s},
                "measured_kmax_wall_time_s": wall,
            })
            if args.out is None:
                continue
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps({"meta": {
                "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": platform.processor()
                or platform.machine(), "args": vars(args)}, "rows": rows}, indent=1) + "\n")
    print("| level | K | ε | acc | strongest | AUC | bal.acc | TPR@1% | ε_LB (CP) | ε_LB (canary) | audit wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        a = r["attacks"][r["strongest"]]
        lb = max((v["epsilon_lb"] or 0.0) for v in r["attacks"].values())
        eps = "∞" if r["epsilon"] is None else f"{r['epsilon']:.2f}"
        tpr = "n/r" if a["tpr_at_1pct"] is None else f"{a['tpr_at_1pct']:.3f}"
        print(f"| {r['level']} | {r['shadows']} | {eps} | {r['utility']:.3f} | {r['strongest']} | {a['auc']:.3f} | "
              f"{a['balanced_accuracy']:.3f} | {tpr} | {lb:.2f} | {r['canary_epsilon_lb']:.2f} | "
              f"{r['wall_time_s']['total']:.0f} |")


if __name__ == "__main__":
    main()
