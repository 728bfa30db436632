"""Held-out accuracy of DP-BiTFiT at several ε against non-private BiTFiT, on the embedded task.

Task: Rotten Tomatoes snippets (``dpaudit.data.load_dataset(path=None)``, fresh vs rotten) with the
embedded all-MiniLM-L6-v2 (``dpaudit.models.load_backbone(None)``), mean pooling + linear head, trained
by the dpaudit trainer (``trainers.loop.Trainer``: Poisson sampling, per-example clipping, noise per
logical batch). A seeded split (``--split-seed``) takes ``--train-size`` training and ``--holdout-size``
disjoint held-out snippets.

For each setting (non-private, then every ε of ``--epsilons``) ONE BiasBank with K = number of seeds
trains all seeds in one pass (they share q, σ and steps; row k uses seed k for sampling and noise).
``q = batch_size / train_size``, ``steps = round(epochs / q)``, and
``σ = calibrate_noise(target_epsilon=ε, delta=δ, sample_rate=q, steps=steps)`` (PRV accountant);
the ε actually spent (``compute_epsilon``) is recorded. Dropout is off (the trainer's default).

Defaults are the issue's full recipe: 10,000 train / 2,500 held out, seq 64, batch 512, Adam 5e-3,
C = 1, 3 epochs, δ = 1e-5, ε ∈ {1, 3, 8}, seeds 0,1,2.

    PYTHONPATH=. python benchmarks/utility.py                                   # full recipe (slow on CPU)
    PYTHONPATH=. python benchmarks/utility.py --train-size 2000 --holdout-size 1000 --max-length 48 \
        --batch-size 256 --seeds 0                                              # reduced (CPU)
    PYTHONPATH=. python benchmarks/utility.py --dp-lrs 1e-2                     # also try other DP lrs
    PYTHONPATH=. python benchmarks/utility.py --head-lr 5e-2 --clip-head 0.3    # issue 13's levers

Writes ``--out`` (JSON, default benchmarks/results/utility.json; rewritten after every setting so a
partial run keeps what finished) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import statistics
import sys
import time
from pathlib import Path

from _machine import cpu_model  # benchmarks/ is sys.path[0] when a script runs

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x.strip()]


def _ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def _clipping(args):
    """All-layer clipping at C, or (``--clip-head``) the head clipped to its own C_h and the biases to C."""
    from dpaudit.trainers.dp import ClippingConfig

    if args.clip_head is None:
        return ClippingConfig(max_grad_norm=args.max_grad_norm, style=args.clip_style)
    return ClippingConfig(max_grad_norm=args.max_grad_norm, style=args.clip_style, mode="groups",
                          groups={"head": (r"^head\.", args.clip_head),
                                  "biases": (r"^(?!head\.)", args.max_grad_norm)})


def run_setting(pristine, encoded_train, y_train, encoded_hold, y_hold, *, epsilon: float | None, lr: float,
                args, seeds: list[int], num_labels: int = 2) -> dict:
    """Train one BiasBank (K = len(seeds)) at ``epsilon`` (None: non-private); held-out accuracy per seed.
    Also used by ``benchmarks/images.py`` (any encoded inputs, ``num_labels`` classes)."""
    import numpy as np

    from dpaudit.privacy.accounting import calibrate_noise, compute_epsilon
    from dpaudit.trainers.classifier import BankedClassifier
    from dpaudit.trainers.dp import ClippingConfig
    from dpaudit.trainers.loop import Trainer, TrainSettings, sample_rate_and_steps
    from dpaudit.trainers.predict import predict_logits

    k, n = len(seeds), len(encoded_train)
    non_private = epsilon is None
    noisy = not non_private and not args.clip_only  # --clip-only: clipping with σ = 0, no privacy
    base = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, micro_batch_size=args.micro_batch_size,
                         lr=lr, head_lr=args.head_lr, optimizer="adam", schedule=args.schedule,
                         warmup_fraction=args.warmup_fraction, autocast=args.autocast,
                         clipping=_clipping(args),
                         non_private=non_private, delta=args.delta, noise_multiplier=0.0)
    q, steps = sample_rate_and_steps(base, [n] * k)
    # RESULTS.md was measured with opacus' PRV accountant, add/remove neighbours: kept so the numbers stay true
    sigma = calibrate_noise(target_epsilon=epsilon, delta=args.delta, sample_rate=q, steps=steps, accountant="prv",
                            neighbouring="add_remove") if noisy else 0.0
    settings = TrainSettings(**{**base.__dict__, "noise_multiplier": sigma})
    spent = compute_epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=args.delta, accountant="prv",
                            neighbouring="add_remove") if noisy else None
    clf = BankedClassifier.from_backbone(copy.deepcopy(pristine), num_models=k, num_labels=num_labels)
    membership = np.ones((k, n), dtype=bool)
    trainer = Trainer(clf, encoded_train, y_train, membership, settings, seeds=seeds, run=None,
                      progress=args.progress)
    t0 = time.perf_counter()
    outcome = trainer.run(resume=False)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    logits = predict_logits(clf, encoded_hold, batch_size=args.eval_batch_size)  # (K, N_hold, 2)
    eval_s = time.perf_counter() - t0
    acc = [float((logits[i].argmax(-1) == y_hold).mean()) for i in range(k)]
    return {
        "setting": "non-private" if non_private else "clip only (σ = 0)" if args.clip_only else f"eps={epsilon:g}",
        "target_epsilon": None if non_private else epsilon,
        "epsilon_spent": spent,
        "delta": args.delta, "noise_multiplier": sigma, "sample_rate": q, "steps": outcome.steps,
        "planned_steps": outcome.planned_steps, "lr": lr, "head_lr": args.head_lr, "seeds": seeds, "accuracy_per_seed": acc,
        "accuracy_mean": statistics.mean(acc), "accuracy_std": statistics.stdev(acc) if k > 1 else 0.0,
        "clip_fraction": outcome.clip_fraction, "mean_grad_norm": outcome.mean_grad_norm,
        "train_wall_s": round(train_s, 1), "eval_wall_s": round(eval_s, 1),
    }


def _markdown(rows: list[dict], meta: dict) -> str:
    lines = [f"Held-out accuracy, {meta['train_size']} train / {meta['holdout_size']} held out, seq {meta['max_length']}, "
             f"batch {meta['batch_size']}, {meta['epochs']} epochs, C={meta['max_grad_norm']}, δ={meta['delta']:g}, "
             f"seeds {meta['seeds']} (majority class on held-out: {meta['holdout_majority']:.3f})",
             "",
             "| setting | lr | σ | q | steps | ε spent | accuracy (mean ± sd) | per seed | train s |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        eps = "∞" if r["epsilon_spent"] is None else f"{r['epsilon_spent']:.2f}"
        lines.append(f"| {r['setting']} | {r['lr']:g} | {r['noise_multiplier']:.3f} | {r['sample_rate']:.4f} | {r['steps']} "
                     f"| {eps} | {r['accuracy_mean']:.3f} ± {r['accuracy_std']:.3f} "
                     f"| {', '.join(f'{a:.3f}' for a in r['accuracy_per_seed'])} | {r['train_wall_s']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train-size", type=int, default=10_000)
    ap.add_argument("--holdout-size", type=int, default=2_500)
    ap.add_argument("--seeds", type=_ints, default=[0, 1, 2], help="comma-separated, e.g. 0,1,2")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--epsilons", type=_floats, default=[1.0, 3.0, 8.0], help="comma-separated, e.g. 1,3,8")
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=512, help="expected logical batch per model")
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--head-lr", type=float, default=None, help="the task head's lr (default: --lr)")
    ap.add_argument("--schedule", default="constant", choices=("constant", "linear", "cosine"))
    ap.add_argument("--warmup-fraction", type=float, default=0.0)
    ap.add_argument("--clip-head", type=float, default=None,
                    help="clip the head to this C_h and the biases to --max-grad-norm (groups mode)")
    ap.add_argument("--clip-style", default="abadi", choices=("abadi", "automatic"))
    ap.add_argument("--dp-lrs", type=_floats, default=[], help="extra learning rates tried for every ε")
    ap.add_argument("--delta", type=float, default=1e-5)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--micro-batch-size", type=int, default=128)
    ap.add_argument("--eval-batch-size", type=int, default=256)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--clip-only", action="store_true",
                    help="diagnostic: the DP settings with clipping but σ = 0 (no privacy; separates clipping from noise)")
    ap.add_argument("--autocast", action="store_true", help="bf16 forward (train.autocast; CUDA or native-bf16 CPU)")
    ap.add_argument("--no-nonprivate", action="store_true", help="skip the non-private reference")
    ap.add_argument("--progress", action="store_true", help="tqdm bars")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "utility.json"))
    ap.add_argument("--smoke", action="store_true", help="32 train / 16 held out, seq 16, seed 0, ε = 8 and "
                    "non-private, batch 8, 1 epoch: checks the script; writes no file")
    args = ap.parse_args(argv)
    if args.smoke:
        args.train_size, args.holdout_size, args.max_length, args.seeds, args.epsilons = 32, 16, 16, [0], [8.0]
        args.batch_size, args.epochs, args.micro_batch_size, args.eval_batch_size, args.out = 8, 1.0, 8, 16, None

    import numpy as np
    import torch

    from dpaudit.data import load_dataset
    from dpaudit.models import load_backbone
    from dpaudit.trainers.batching import EncodedTexts

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.time()
    pristine, tokenizer, info = load_backbone(None)
    ds = load_dataset(path=None)
    if args.train_size + args.holdout_size > len(ds):
        ap.error(f"--train-size + --holdout-size must be <= {len(ds)} (the embedded dataset)")
    perm = np.random.default_rng(args.split_seed).permutation(len(ds))
    tr, ho = perm[: args.train_size], perm[args.train_size : args.train_size + args.holdout_size]
    enc_tr = EncodedTexts.from_texts([ds.texts[i] for i in tr], tokenizer, max_length=args.max_length)
    enc_ho = EncodedTexts.from_texts([ds.texts[i] for i in ho], tokenizer, max_length=args.max_length)
    y_tr, y_ho = ds.labels[tr], ds.labels[ho]
    meta = {
        "benchmark": "utility", "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": info.name, "data": ds.name, "population": len(ds), "train_size": args.train_size,
        "holdout_size": args.holdout_size, "split_seed": args.split_seed, "seeds": args.seeds,
        "epochs": args.epochs, "max_length": args.max_length, "batch_size": args.batch_size, "lr": args.lr,
        "dp_lrs": args.dp_lrs, "delta": args.delta, "max_grad_norm": args.max_grad_norm,
        "clipping": f"{args.clip_style}, " + ("all-layer" if args.clip_head is None else
                                               f"groups: head C_h={args.clip_head:g}, biases C={args.max_grad_norm:g}"),
        "head_lr": args.head_lr, "optimizer": f"adam, {args.schedule} lr, warm-up {args.warmup_fraction:g}",
        "accountant": "prv", "micro_batch_size": args.micro_batch_size, "autocast_bf16": args.autocast,
        "holdout_majority": float(max(y_ho.mean(), 1 - y_ho.mean())),
        "mean_train_tokens": float(enc_tr.lengths.mean()), "threads": torch.get_num_threads(),
        "cpu": cpu_model(), "nproc": os.cpu_count(), "torch": torch.__version__,
        "command": "python " + " ".join([os.path.relpath(__file__, ROOT)] + (argv if argv is not None else sys.argv[1:])),
    }
    out = None if args.out is None else Path(args.out)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    plan: list[tuple[float | None, float]] = [] if args.no_nonprivate else [(None, args.lr)]
    plan += [(eps, args.lr) for eps in args.epsilons]  # the main grid first, extra DP lrs after it
    plan += [(eps, lr) for lr in args.dp_lrs if lr != args.lr for eps in args.epsilons]
    for eps, lr in plan:
        row = run_setting(pristine, enc_tr, y_tr, enc_ho, y_ho, epsilon=eps, lr=lr, args=args, seeds=args.seeds)
        rows.append(row)
        print(f"{row['setting']} lr={lr:g}: acc {row['accuracy_mean']:.3f} (σ={row['noise_multiplier']:.3f}, "
              f"{row['steps']} steps, {row['train_wall_s']:.0f}s train)", file=sys.stderr, flush=True)
        meta["wall_s"] = round(time.time() - start, 1)
        if out is not None:
            out.write_text(json.dumps({"meta": meta, "results": rows}, indent=1) + "\n")
    print(_markdown(rows, meta))
    if out is not None:
        print(f"\nwrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
