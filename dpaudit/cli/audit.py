"""``dpaudit audit``: train the target and K shadow models, attack the target, report.

Trains (or, with ``audit.target_checkpoint`` and ``audit.target_members``, loads) the target and trains
K shadows with the same recipe in one BiasBank pass; every model scores the whole population; the
attacks (LOSS, Shokri's shadow classifier, LiRA online/offline, RMIA) run leave-one-out; the one-run
canary audit and Clopper–Pearson bounds give empirical ε lower bounds. Writes ``audit.json`` and
``report.html`` / ``report.md`` into the run directory. Rerunning the same command resumes: finished
models are not retrained and finished scores are not recomputed.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from dpaudit.cli.common import add_config_flags, overrides_from_args

DESCRIPTION = "train target + shadows, run membership-inference attacks, write audit.json and a report"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("audit", help=DESCRIPTION, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(parser)
    parser.add_argument("--shadows", type=int, help="number of shadow models K (even)")
    parser.add_argument("--attacks", help="comma-separated attack names (default: all registered)")
    parser.add_argument("--target-checkpoint", help="audit a model trained elsewhere: its models.safetensors")
    parser.add_argument("--target-members", help="file of the target's training-example ids (JSON list or lines)")
    parser.add_argument("--format", default="html,md",
                        help="report formats written after the audit (subset of html,md,pdf; 'none' to skip)")
    parser.set_defaults(func=run)


class _PrintHandler(logging.Handler):
    """Shows a library log record as a plain line on the current ``sys.stdout``, like ``print``."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record))


def show_progress_messages(name: str = "dpaudit.attacks") -> None:
    """Print INFO messages of the ``name`` logger tree (the audit's progress lines) to stdout, once.

    They are not passed on to the root logger: a library that configures root logging at import (opacus
    calls ``logging.basicConfig``) would otherwise repeat every line, time-stamped, on stderr.
    """
    log = logging.getLogger(name)
    log.setLevel(logging.INFO)
    log.propagate = False
    if not any(isinstance(h, _PrintHandler) for h in log.handlers):
        log.addHandler(_PrintHandler())


def _print_summary(report) -> None:
    p = report.privacy
    claim = "ε = ∞ (non-private)" if p.non_private else f"ε = {p.epsilon:.3g}, δ = {p.delta:.2g}"
    base = report.utility.majority_baseline
    base_txt = "" if base is None else f" (majority-class baseline {base:.4f})"
    print(f"\nclaimed: {claim}; utility (target, held-out accuracy) = {report.utility.value:.4f}{base_txt}")
    print(f"{'attack':<14}{'AUC':>8}{'bal.acc':>9}{'TPR@1%':>9}{'ε_LB':>8}")
    for att in report.attacks:
        tpr = next((t.tpr for t in att.tpr_at_fpr if abs(t.fpr - 0.01) < 1e-12), None)
        lb = att.epsilon_lb.get("epsilon_lb")
        row = [f"{v:.3f}" if isinstance(v, float) else "n/a" for v in (att.auc, att.balanced_accuracy, tpr, lb)]
        print(f"{att.name:<14}{row[0]:>8}{row[1]:>9}{row[2]:>9}{row[3]:>8}")
    c = report.canary or {}
    if c:
        print(f"one-run canary audit: ε_LB = {c.get('epsilon_lb', 0.0):.3f} at {100 * (1 - c['significance']):.0f}% "
              f"confidence ({c.get('num_correct')}/{c.get('num_guesses')} correct guesses)")
    v = report.verdict
    if v.protection_level:
        print(f"protection level (strongest attack: {v.strongest_attack}): {v.protection_level}")


def run(args: argparse.Namespace) -> int:
    from dpaudit.attacks.audit import run_audit
    from dpaudit.config import load_config

    overrides = overrides_from_args(args)
    if args.shadows is not None:
        overrides.append(("audit", "num_shadows", args.shadows))
    if args.attacks:
        overrides.append(("audit", "attacks", [a.strip() for a in args.attacks.split(",") if a.strip()]))
    if args.target_checkpoint:
        overrides.append(("audit", "target_checkpoint", args.target_checkpoint))
    if args.target_members:
        overrides.append(("audit", "target_members", args.target_members))
    cfg, notes = load_config(args.config, overrides)
    for note in notes:
        print(note)
    show_progress_messages()
    run_dir = Path(args.run_dir or f"runs/audit-{time.strftime('%Y%m%d-%H%M%S')}")
    outcome = run_audit(cfg, run_dir, progress=not args.quiet, force_run_dir=args.force_run_dir)
    _print_summary(outcome.report)
    formats = [f.strip() for f in args.format.split(",") if f.strip() and f.strip() != "none"]
    if formats:
        from dpaudit.cli.main import main

        code = main(["report", str(run_dir), "--format", ",".join(formats)])
        if code:
            return code
    print(f"audit.json written to {run_dir}; gate it with `dpaudit gate {run_dir}/audit.json --policy POLICY.toml`")
    return 0
