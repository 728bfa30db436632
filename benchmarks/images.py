"""The embedded image task: DP-BiTFiT at several ε vs non-private BiTFiT vs non-private full fine-tuning.

Task: ``--train-size`` images of the embedded private task (Fashion-MNIST classes 5-9 of the train split,
``dpaudit.embedded_images.load_embedded_images``, seeded subset) and ``--holdout-size`` of its test split;
model: the embedded ConvNeXt (``load_backbone("embedded-vision")``), pooled features + a new 5-way head.

* ``bitfit`` / ``eps=E``: one BiasBank with K = number of seeds, trained by the dpaudit trainer
  (:func:`utility.run_setting`: Poisson sampling; DP: per-example clipping at C and σ calibrated by the PRV
  accountant, add/remove neighbours, to reach ε = E at δ = 1/(10·train size), as the demo's δ).
* ``full``: every weight plus the head, AdamW, no clipping, no noise (``trainers.full``; the audit's
  ``full_non_private`` reference recipe), one model per seed.

Each setting runs in its own subprocess, so its peak memory is its own: peak RSS (``VmHWM`` after
``/proc/self/clear_refs``) during training minus RSS just before it; step time = training wall / steps.

    PYTHONPATH=. python benchmarks/images.py --seeds 0,1,2        # writes benchmarks/results/images.json
    PYTHONPATH=. python benchmarks/images.py --smoke              # 64 train / 32 held out, 1 epoch; no file
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from _machine import cpu_model  # benchmarks/ is sys.path[0] when a script runs

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _data(args):
    from dpaudit.embedded_images import load_embedded_images

    train = load_embedded_images(split="train", max_examples=args.train_size, seed=args.split_seed)
    hold = load_embedded_images(split="test", max_examples=args.holdout_size, seed=args.split_seed)
    return train, hold


def _full(args, train, hold, seeds) -> dict:
    """Full non-private fine-tuning (the audit's reference recipe), one model per seed; held-out accuracy."""
    import numpy as np

    from dpaudit.image_dataset import ImageDataset, image_content_hash
    from dpaudit.models import load_backbone
    from dpaudit.pipeline.full_reference import full_reference_recipe
    from dpaudit.rundir import RunDir
    from dpaudit.trainers.full import full_shadow_logits

    pixels = np.concatenate([train.pixels, hold.pixels])
    labels = np.concatenate([train.labels, hold.labels])
    pop = ImageDataset(pixels, labels, train.label_names, "train+holdout", "memory", image_content_hash(pixels, labels))
    _, prep, _ = load_backbone("embedded-vision")
    enc = prep.encode(pop)
    n = len(train)
    recipe = full_reference_recipe(n, epochs=args.full_epochs, batch_size=args.full_batch_size, lr=args.full_lr,
                                   max_length=1)
    rows = np.zeros((len(seeds), len(pop)), dtype=bool)
    rows[:, :n] = True
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        logits = full_shadow_logits("embedded-vision", enc, labels, rows, len(train.label_names), recipe,
                                    seeds=seeds, run=RunDir.claim(Path(tmp) / "run", command="audit"), device="cpu")
        train_s = time.perf_counter() - t0
    acc = [float((logits[k, n:].argmax(-1) == hold.labels).mean()) for k in range(len(seeds))]
    return {"setting": "full (non-private)", "lr": args.full_lr, "steps": int(recipe.steps) * len(seeds),
            "accuracy_per_seed": acc, "train_wall_s": round(train_s, 1), "epsilon_spent": None}


def worker(args) -> dict:
    """One setting, in this process: train, then held-out accuracy, step time and peak memory."""
    import torch

    from cpu_step import _proc_status, _reset_peak
    from utility import run_setting

    from dpaudit.models import load_backbone

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    train, hold = _data(args)
    seeds = args.seeds
    if args.worker != "full":
        pristine, prep, _ = load_backbone("embedded-vision")
        enc_tr, enc_ho = prep.encode(train), prep.encode(hold)
    before = _proc_status().get("VmRSS", 0)
    exact = _reset_peak()
    if args.worker == "full":
        row = _full(args, train, hold, args.full_seeds or seeds)
    else:
        eps = None if args.worker == "bitfit" else float(args.worker.split("=")[1])
        opts = SimpleNamespace(epochs=args.epochs, batch_size=args.batch_size, micro_batch_size=256, head_lr=args.head_lr,
                               schedule="constant", warmup_fraction=0.0, autocast=False, clip_head=None,
                               clip_style="abadi", max_grad_norm=1.0, delta=1.0 / (10 * len(train)), clip_only=False,
                               progress=False, eval_batch_size=512)
        row = run_setting(pristine, enc_tr, train.labels, enc_ho, hold.labels, epsilon=eps, lr=args.lr, args=opts,
                          seeds=seeds, num_labels=len(train.label_names))
    peak = _proc_status().get("VmHWM", 0) - before
    row.update(peak_mb=round(peak / 2**20, 1), peak_exact=exact, step_s=round(row["train_wall_s"] / row["steps"], 3))
    return row


def _markdown(rows: list[dict]) -> str:
    base = next((r for r in rows if r["setting"] == "non-private"), None)
    lines = ["| setting | ε spent | held-out accuracy (per seed) | steps | step s | step ratio | peak MB | peak ratio |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        eps = "∞" if r.get("epsilon_spent") is None else f"{r['epsilon_spent']:.2f}"
        accs = r["accuracy_per_seed"]
        ratio = (lambda key: f"{r[key] / base[key]:.2f}" if base and base[key] and "full" not in r["setting"] else "—")
        lines.append(f"| {r['setting']} | {eps} | {sum(accs) / len(accs):.3f} ({', '.join(f'{a:.3f}' for a in accs)}) "
                     f"| {r['steps']} | {r['step_s']:.3f} | {ratio('step_s')} | {r['peak_mb']:.0f} | {ratio('peak_mb')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--train-size", type=int, default=2000)
    ap.add_argument("--holdout-size", type=int, default=1000)
    ap.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0])
    ap.add_argument("--epsilons", type=lambda s: [float(x) for x in s.split(",")], default=[1.0, 3.0, 8.0])
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=5e-3, help="the bias tables (as configs/demo-images.toml)")
    ap.add_argument("--head-lr", type=float, default=5e-2)
    ap.add_argument("--full-seeds", type=lambda s: [int(x) for x in s.split(",")], default=None,
                    help="seeds of the full fine-tunes (one model each; default: --seeds)")
    ap.add_argument("--full-lr", type=float, default=1e-3)
    ap.add_argument("--full-epochs", type=float, default=3.0)
    ap.add_argument("--full-batch-size", type=int, default=64)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "images.json"))
    ap.add_argument("--smoke", action="store_true", help="64 train / 32 held out, 1 epoch, ε = 8: checks the script")
    args = ap.parse_args(argv)
    if args.smoke:
        args.train_size, args.holdout_size, args.epochs, args.full_epochs, args.epsilons, args.out = 64, 32, 1, 1, [8.0], None
        args.batch_size = args.full_batch_size = 16
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    settings = ["bitfit", *(f"eps={e:g}" for e in args.epsilons), "full"]
    passed = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--smoke"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows, start = [], time.time()
    for setting in settings:
        cmd = [sys.executable, __file__, *passed, *(["--smoke"] if args.smoke else []), "--worker", setting]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if out.returncode != 0:
            sys.stderr.write(out.stderr[-3000:])
            return 1
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{setting}: {rows[-1]['accuracy_per_seed']} ({rows[-1]['train_wall_s']} s)", file=sys.stderr, flush=True)
    meta = {"benchmark": "images", "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "wall_s": round(time.time() - start, 1), "load_avg": os.getloadavg(), "cpu": cpu_model(),
            "nproc": os.cpu_count(), "args": vars(args)}
    print(_markdown(rows))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"meta": meta, "results": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
