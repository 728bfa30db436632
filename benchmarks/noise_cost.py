"""Step time of DP-BiTFiT with secret (OS CSPRNG) vs seeded randomness, side by side in one process (issue 8).

Model: the embedded all-MiniLM-L6-v2 with the banked mean-pool head (K=1); data: ``--n`` embedded Rotten
Tomatoes snippets at ``--seq`` tokens; one full :meth:`trainers.loop.Trainer._train_step` (Poisson
sampling of all n examples at q = batch/n, forward, backward, clip, noise, Adam) per timing. One trainer,
whose randomness source is swapped between ``SecureRandom`` (``os.urandom`` uniforms, Box–Muller in
float64, sum of four draws) and ``SeededRandom``; the Poisson draw is made from the source as in training
but the examples fed forward are one fixed batch of ``--batch``, so both sources time the same work and
only the randomness differs. Rounds alternate the order (secure first, then seeded first) so drift hits
both alike; the ratio secure/seeded is taken per round and the median reported, with the time of the
randomness alone (sampling + noise for one step) measured separately.

    PYTHONPATH=. python benchmarks/noise_cost.py              # defaults: n=2000, batch 64, seq 64, 5 rounds
    PYTHONPATH=. python benchmarks/noise_cost.py --smoke      # tiny: checks the script
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from _machine import cpu_model  # benchmarks/ is sys.path[0] when a script runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per trainer per round")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.n, args.batch, args.seq, args.rounds, args.steps = 200, 8, 16, 1, 1

    from dpaudit.data import load_dataset
    from dpaudit.models import load_backbone
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.trainers.classifier import BankedClassifier
    from dpaudit.trainers.loop import Trainer, TrainSettings
    from dpaudit.trainers.randomness import SecureRandom, SeededRandom

    torch.manual_seed(0)
    torch.set_num_threads(1)
    ds = load_dataset(path="embedded", text_column="text", label_column="label", max_examples=args.n, seed=0)
    backbone, tokenizer, _ = load_backbone("embedded")
    clf = BankedClassifier.from_backbone(backbone, num_models=1, num_labels=ds.num_classes)
    enc = EncodedTexts.from_texts(ds.texts, tokenizer, max_length=args.seq)
    settings = TrainSettings(epochs=100.0, batch_size=args.batch, micro_batch_size=args.batch, noise_multiplier=1.0)
    trainer = Trainer(clf, enc, ds.labels, np.ones((1, len(ds)), bool), settings, seeds=[0], progress=False)
    clf.backbone.train(False)
    fixed = np.arange(args.batch), np.zeros(args.batch, dtype=np.int64)

    def logical_batch():
        for src, members in zip(trainer.sources, trainer.members):  # the real draw, for its cost
            src.bernoulli(len(members), trainer.q, step=trainer.step)
        return fixed

    trainer._logical_batch = logical_batch
    sources = {"secure": SecureRandom(), "seeded": SeededRandom(0)}
    d = clf.bank.num_trainable()

    def timed(name: str) -> float:
        trainer.sources = trainer.agg.sources = [sources[name]]
        t = time.perf_counter()
        trainer._train_step()
        trainer.step += 1
        return time.perf_counter() - t

    for name in sources:  # warm-up
        timed(name)
    ratios, times = [], {"secure": [], "seeded": []}
    for r in range(args.rounds):
        order = ("secure", "seeded") if r % 2 == 0 else ("seeded", "secure")
        per = {}
        for name in order:
            per[name] = statistics.median(timed(name) for _ in range(args.steps))
            times[name].append(per[name])
        ratios.append(per["secure"] / per["seeded"])
    draw = {}
    for name, src in (("secure", SecureRandom()), ("seeded", SeededRandom(0))):
        t = time.perf_counter()
        for step in range(20):
            src.bernoulli(args.n, args.batch / args.n, step=step)
            src.gaussian(d, 1.0, step=step)
        draw[name] = (time.perf_counter() - t) / 20
    print(f"machine: {cpu_model()}, torch threads {torch.get_num_threads()}; model all-MiniLM-L6-v2, "
          f"{d:,} trainable per model; n={args.n}, batch {args.batch}, seq {args.seq}, {args.rounds} rounds × "
          f"{args.steps} steps")
    print("| randomness | step time (median, s) | randomness per step (ms) | ratio to seeded (median of rounds) |")
    print("|---|---|---|---|")
    for name in ("seeded", "secure"):
        ratio = 1.0 if name == "seeded" else statistics.median(ratios)
        print(f"| {name} | {statistics.median(times[name]):.3f} | {1000 * draw[name]:.2f} | {ratio:.3f} |")
    print(f"per-round ratios: {', '.join(f'{x:.3f}' for x in ratios)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
