"""``dpaudit verify``: check that the DP step does what the accountant assumes (white-box canaries).

Runs dpaudit's own training step — Poisson sampling, clipping, noise and accounting, on the config's
model and data (loaded as ``dpaudit train`` loads them) — with gradient canaries spread over 4 tables,
observes every noisy update and bounds ε from below (Clopper–Pearson over independent canaries; see
``dpaudit.verify.check``). Writes ``mechanism_check.json`` into ``--run-dir`` and prints ε_LB beside the
accountant's ε. Exit codes: 0 the bound is within the claim, 1 it exceeds the claim (the implementation is
proven wrong), 2 input error (including layer-wise and group clipping, which verify does not check).
It checks the mechanism as run, not the model's data, and not a released model file.
"""

from __future__ import annotations

import argparse
import time

from dpaudit.cli.common import add_config_flags, overrides_from_args

DESCRIPTION = "white-box check that the DP step matches the accountant (ε lower bound vs claimed ε)"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 2:
        raise argparse.ArgumentTypeError(f"--canaries must be an integer in [2, inf), got --canaries={text!r}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"--significance must be in (0, 1), got --significance={text!r}")
    return value


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("verify", help=DESCRIPTION, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(parser)
    parser.add_argument("--canaries", type=_positive_int, default=None,
                        help="white-box canaries (independent runs of the mechanism; default 20000)")
    parser.add_argument("--significance", type=_probability, default=0.05,
                        help="1 − confidence of the ε lower bound (default 0.05)")
    parser.set_defaults(func=run)


def summary(check) -> str:
    """Two lines: the claim, the white-box bound, the ratio and the verdict."""
    verdict = "PASS" if check.passed else "FAIL (the DP step does not implement the claimed mechanism)"
    return (f"claimed ε = {check.claimed_epsilon:.3f} at δ = {check.delta:.3g} (σ={check.noise_multiplier:.4g}, "
            f"q={check.sample_rate:.4g}, steps={check.steps}); {check.num_canaries} canaries, "
            f"{check.wall_time_s:.1f} s\n"
            f"white-box ε_LB = {check.epsilon_lower_bound:.3f} ({check.confidence:.0%} confidence), "
            f"ε_LB/ε = {check.tightness:.3f}: {verdict}")


def run(args: argparse.Namespace) -> int:
    from dpaudit.cli.common import check_inputs
    from dpaudit.config import load_config
    from dpaudit.rundir import removed_if_unfinished

    cfg, notes = load_config(args.config, overrides_from_args(args))
    for note in notes:
        print(note)
    run_path = args.run_dir or f"runs/verify-{time.strftime('%Y%m%d-%H%M%S')}"
    check_inputs(cfg, run_path, command="verify", force_run_dir=args.force_run_dir)  # before torch is imported
    with removed_if_unfinished(run_path):
        return _verify(args, cfg, run_path)


def _verify(args: argparse.Namespace, cfg, run_path: str) -> int:
    from dpaudit.rundir import RunDir, config_inputs
    from dpaudit.verify.check import DEFAULT_CANARIES, run_mechanism_check

    run_dir = RunDir.claim(run_path, command="verify", force=args.force_run_dir)
    canaries = DEFAULT_CANARIES if args.canaries is None else args.canaries
    run_dir.bind({"config": config_inputs(cfg.to_dict()), "canaries": canaries, "significance": args.significance})
    check = run_mechanism_check(cfg, num_canaries=canaries, significance=args.significance)
    run_dir.write_json("mechanism_check.json", check.to_dict())
    print(summary(check))
    print(f"wrote {run_dir.file('mechanism_check.json')}")
    return 0 if check.passed else 1
