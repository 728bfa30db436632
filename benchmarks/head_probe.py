"""DP training of the task head alone on frozen mean-pooled features: how much of DP-BiTFiT's gap is the head?

Features: the embedded all-MiniLM-L6-v2, mean-pooled last hidden states (seq 64, fp32, 1 thread) of all
12,752 embedded Rotten Tomatoes snippets, cached in ``--features`` (``.npz``). Split: the one
``benchmarks/utility.py`` uses (``default_rng(split_seed).permutation``, first ``--train-size`` train, next
``--holdout-size`` held out). Training: the head ``W`` (H+1)×2 from zero, Poisson sampling at
q = batch/N, per-example clipping of ‖∂W_i‖ = ‖p_i − y_i‖·‖[h_i, 1]‖ to C (Abadi), Gaussian noise σC,
division by qN, Adam; σ = ``calibrate_noise`` (PRV) for ε at δ = 1e-5, ``steps = round(epochs / q)``.
This is exactly DP-BiTFiT with the bias learning rate at 0, without its cost (seconds, not minutes).

    PYTHONPATH=. python benchmarks/head_probe.py --train-size 10000 --holdout-size 2500
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def features(path: Path, max_examples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean-pooled features (N, H) and labels (N,) of the embedded data (a seeded subset of ``max_examples``
    if given); computed once into ``path``."""
    if path.exists():
        d = np.load(path)
        return d["H"], d["y"]
    import torch

    from dpaudit.data import load_dataset
    from dpaudit.models import load_backbone
    from dpaudit.trainers.batching import EncodedTexts

    torch.set_num_threads(1)
    model, tok, _ = load_backbone(None)
    model.eval()
    ds = load_dataset(path=None, max_examples=max_examples)
    enc = EncodedTexts.from_texts(list(ds.texts), tok, max_length=64)
    order = np.argsort(enc.lengths)
    h_all = np.zeros((len(ds), model.config.hidden_size), np.float32)
    with torch.no_grad():
        for s in range(0, len(order), 256):
            idx = order[s : s + 256]
            ids, mask = enc.collate(idx, torch.device("cpu"))
            h = model(input_ids=ids, attention_mask=mask).last_hidden_state
            mk = mask.unsqueeze(-1).float()
            h_all[idx] = ((h * mk).sum(1) / mk.sum(1)).numpy()
    np.savez(path, H=h_all, y=np.asarray(ds.labels))
    return h_all, np.asarray(ds.labels)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train-size", type=int, default=10_000)
    ap.add_argument("--holdout-size", type=int, default=2_500)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--features", default="/tmp/dpaudit_head_probe.npz")
    ap.add_argument("--smoke", action="store_true", help="features of 64 snippets (seq 64) in a temporary file, "
                    "40 train / 24 held out, one setting per ε: checks the script; keeps no file")
    args = ap.parse_args(argv)
    if args.smoke:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            args.train_size, args.holdout_size = 40, 24
            return _probe(args, features(Path(tmp) / "features.npz", max_examples=64), smoke=True)
    return _probe(args, features(Path(args.features)))


def _probe(args, data: tuple[np.ndarray, np.ndarray], *, smoke: bool = False) -> int:

    from dpaudit.privacy.accounting import calibrate_noise

    sigma_for = functools.lru_cache(None)(lambda eps, q, steps: calibrate_noise(
        target_epsilon=eps, delta=1e-5, sample_rate=q, steps=steps, accountant="prv",
        neighbouring="add_remove"))  # as measured for RESULTS.md (PRV, add/remove)
    h_all, y = data
    x = np.hstack([h_all.astype(np.float64), np.ones((len(y), 1))])
    onehot = np.eye(2)[y]
    perm = np.random.default_rng(args.split_seed).permutation(len(y))
    tr, ho = perm[: args.train_size], perm[args.train_size : args.train_size + args.holdout_size]
    n = len(tr)

    def run(eps, batch, epochs, lr, sched="constant", c=1.0, seed=0):
        rng = np.random.default_rng(seed)
        q = batch / n
        steps = max(1, round(epochs / q))
        sigma = 0.0 if eps is None else sigma_for(eps, q, steps)
        w = np.zeros((x.shape[1], 2))
        m, v = np.zeros_like(w), np.zeros_like(w)
        for t in range(steps):
            idx = tr[rng.random(n) < q]
            z = x[idx] @ w
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            g_logit = p - onehot[idx]
            if eps is None:
                g = x[idx].T @ g_logit
            else:
                norms = np.linalg.norm(g_logit, axis=1) * np.linalg.norm(x[idx], axis=1)
                f = np.minimum(1, c / np.maximum(norms, 1e-12))
                g = x[idx].T @ (g_logit * f[:, None]) + rng.normal(0, sigma * c, w.shape)
            g /= q * n
            a = lr * (1 - t / steps if sched == "linear" else 1)
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            w -= a * (m / (1 - 0.9 ** (t + 1))) / (np.sqrt(v / (1 - 0.999 ** (t + 1))) + 1e-8)
        return float(((x[ho] @ w).argmax(1) == y[ho]).mean())

    if smoke:
        print("smoke, batch 16, 3 epochs, lr 2e-2: non-private", run(None, 16, 3, 2e-2),
              "| ε = 8, 3, 1:", [run(eps, 16, 3, 2e-2) for eps in (8, 3, 1)])
        return 0
    print("non-private, batch 512, 3 epochs, lr 5e-3 / 2e-2 / 5e-2:",
          [run(None, 512, 3, lr) for lr in (5e-3, 2e-2, 5e-2)], "| 20 epochs lr 2e-2:", run(None, 512, 20, 2e-2))
    for eps in (8, 3, 1):
        for batch, epochs in ((256, 3), (512, 3), (1024, 3), (1024, 6)):
            for lr in (5e-3, 2e-2, 5e-2, 1e-1):
                for sched in ("constant", "linear"):
                    accs = [run(eps, batch, epochs, lr, sched, seed=s) for s in range(3)]
                    print(eps, batch, epochs, lr, sched, f"{np.mean(accs):.3f}±{np.std(accs):.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
