"""Old vs new per-attack ε lower bounds on one audit run dir (issue 15).

Old (c7a0995): Clopper–Pearson on FPR/FNR of the target's population, threshold chosen on a random half
(``Split(frac=0.5, seed)``) — assumes one observation per independent run, which one target's examples
are not. New: the one-run bound (arXiv 2305.08846v1, Theorem 3) and the f-DP one-run bound with the
Gaussian trade-off (arXiv 2410.22235v1) on the same scores, guesses = top/bottom ⌊frac·N/2⌋; "reported"
is the larger of the two at α/2 each, "family" the same at α/(attacks + 1) per source (what
``dpaudit audit`` now writes; its maximum is the headline).

Usage (from the repo root; reads only the run dir, trains nothing):
    python benchmarks/bounds_compare.py RUN_DIR [--delta D] [--significance 0.05] [--guess-fraction 0.1]
RUN_DIR must hold ``signals.npz`` and ``membership.npy`` (``dpaudit audit`` writes both); δ defaults to the
one in RUN_DIR/audit.json. Prints a Markdown table (ε in nats).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from dpaudit.attacks.canary import guess_counts
from dpaudit.attacks.registry import ATTACKS, create_attack
from dpaudit.attacks.signals import Signals
from dpaudit.privacy import Split, epsilon_lower_bound, one_run_audit, source_significance


def _delta(run_dir: Path, given: float | None) -> float:
    if given is not None:
        return given
    report = run_dir / "audit.json"
    if report.is_file():
        return float(json.loads(report.read_text(encoding="utf-8"))["privacy"]["delta"])
    raise SystemExit(f"error: no --delta given and no {report} to read it from; pass --delta.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, nargs="?")
    ap.add_argument("--smoke", action="store_true",
                    help="a synthetic run dir (5 models × 200 examples, seeded logits), checks the script; writes nothing")
    ap.add_argument("--delta", type=float, default=None)
    ap.add_argument("--significance", type=float, default=0.05)
    ap.add_argument("--guess-fraction", type=float, default=0.1)
    ap.add_argument("--attacks", nargs="+", default=sorted(ATTACKS))
    ap.add_argument("--seed", type=int, default=0, help="seed of the old Split threshold choice")
    args = ap.parse_args(argv)
    if args.smoke:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            args.run_dir, args.delta = _synthetic_run_dir(Path(tmp)), 1e-5
            return _compare(args)
    if args.run_dir is None:
        ap.error("RUN_DIR is required (or --smoke)")
    return _compare(args)


def _synthetic_run_dir(root: Path) -> Path:
    """``signals.npz`` + ``membership.npy`` of 5 models on 200 examples, members' logits shifted (smoke)."""
    rng = np.random.default_rng(0)
    membership = rng.random((5, 200)) < 0.5
    labels = rng.integers(0, 2, 200)
    logits = rng.normal(size=(5, 200, 2)).astype(np.float32)
    logits[np.nonzero(membership)[0], np.nonzero(membership)[1], labels[np.nonzero(membership)[1]]] += 1.0
    Signals(logits, labels).save(root / "signals.npz")
    np.save(root / "membership.npy", membership)
    return root


def _compare(args) -> int:
    for name in ("signals.npz", "membership.npy"):
        if not (args.run_dir / name).is_file():
            print(f"error: {args.run_dir / name} is missing; run `dpaudit audit --run-dir {args.run_dir}` first.",
                  file=sys.stderr)
            return 2
    signals = Signals.load(args.run_dir / "signals.npz")
    membership = np.load(args.run_dir / "membership.npy", allow_pickle=False)
    delta, alpha = _delta(args.run_dir, args.delta), args.significance
    is_in = membership[0]
    k = guess_counts(is_in.size, args.guess_fraction)
    family_alpha = source_significance(alpha, len(args.attacks) + 1)
    print(f"run dir {args.run_dir}: N={is_in.size}, members={int(is_in.sum())}, delta={delta:.3g}, "
          f"alpha={alpha:g}, guesses={2 * k} (top/bottom {k}), family alpha per source={family_alpha:.4g}\n")
    print("| attack | old: CP split (indep. runs) | one_run | one_run_fdp (estimate) | reported (one_run at α) "
          "| in family (α/(A+1)) | correct / guesses |")
    print("|---|---|---|---|---|---|---|")
    for name in args.attacks:
        scores = create_attack(name).score(signals, membership, target=0,
                                           reference=np.arange(1, membership.shape[0]))
        old = epsilon_lower_bound(scores[is_in], scores[~is_in], delta=delta, significance=alpha,
                                  strategy=Split(frac=0.5, seed=args.seed))
        kw = dict(num_guesses_in=k, num_guesses_out=k, delta=delta)
        single = {e: one_run_audit(scores, is_in, significance=alpha, estimators=(e,), **kw)
                  for e in ("one_run", "one_run_fdp")}
        reported = one_run_audit(scores, is_in, significance=alpha, **kw)
        family = one_run_audit(scores, is_in, significance=family_alpha, **kw)
        cells = [old, single["one_run"], single["one_run_fdp"], reported, family]
        text = [f"{c.epsilon_lb:.3f}" + ("+" if c.saturated else "") if c.status == "ok" else "inconcl."
                for c in cells]
        print(f"| {name} | " + " | ".join(text) + f" | {reported.num_correct} / {reported.num_guesses} |")
    print("\none_run / one_run_fdp columns: each estimator alone at α (f-DP is an estimate: it assumes a Gaussian "
          "trade-off curve); 'reported' is what a single-attack audit states; 'in family' is what `dpaudit audit` "
          "writes per attack.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
