"""``dpaudit audit``: train (or load) the target and K shadow models, attack the target, report.

Trains the target and K shadows with the same recipe in one BiasBank pass, or audits a target trained
elsewhere (``--target PATH --target-members IDS``: a dpaudit models.safetensors, a Hugging Face
sequence-classification directory, or a scores file .npy/.csv/.parquet) against K shadows trained with
its recipe where known; every model scores the whole population; the
attacks (LOSS, Shokri's shadow classifier, LiRA online/offline, RMIA) run leave-one-out; the one-run
canary audit and Clopper–Pearson bounds give empirical ε lower bounds. Writes ``audit.json`` and
``report.html`` / ``report.md`` into the run directory. Rerunning the same command resumes: finished
models are not retrained and finished scores are not recomputed; ``--rerun STAGE`` recomputes one stage
(target, shadows, signals, attacks, report) and those after it from the committed files before it.
Under ``torchrun`` the bank rows are sharded over the ranks and rank 0 attacks and reports
(``dpaudit.pipeline.fleet``).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from dpaudit.cli.common import add_config_flags, overrides_from_args
from dpaudit.config import MIN_SHADOWS_REFERENCE_ATTACKS, RANGES, AuditConfig
from dpaudit.pipeline.stage import RERUNNABLE

#: ``[target]`` keys set by flags of the same name.
_TARGET_FLAGS = (("target", "path"), ("target_kind", "kind"), ("target_members", "members"),
                 ("scores_kind", "scores_kind"), ("claim_epsilon", "claim_epsilon"), ("claim_delta", "claim_delta"),
                 ("claim_noise_multiplier", "claim_noise_multiplier"), ("claim_sample_rate", "claim_sample_rate"),
                 ("claim_steps", "claim_steps"), ("target_recipe", "recipe"), ("canaries", "canaries"))

DESCRIPTION = "train target + shadows, run membership-inference attacks, write audit.json and a report"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("audit", help=DESCRIPTION, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(parser)
    parser.add_argument("--shadows", type=int, help=f"number of shadow models K (audit.num_shadows): even, "
                        f"{RANGES['audit', 'num_shadows'][0]}–{RANGES['audit', 'num_shadows'][1]}, default "
                        f"{AuditConfig.num_shadows}; attacks other than loss need ≥ {MIN_SHADOWS_REFERENCE_ATTACKS} "
                        f"(with fewer and --attacks unset, only loss runs)")
    parser.add_argument("--attacks", help="comma-separated attack names (audit.attacks; default: loss, shadow, lira_online, "
                        "lira_offline, rmia — only loss with 2 shadows)")
    parser.add_argument("--target", metavar="PATH", help="audit a model trained elsewhere: a dpaudit "
                        "models.safetensors, a Hugging Face classifier dir, or a scores file (.npy/.csv/.parquet)")
    parser.add_argument("--target-kind", choices=("auto", "checkpoint", "hf", "scores"),
                        help="what --target is (default: auto-detected)")
    parser.add_argument("--target-members", help="the target's training-example ids: its split.json, a JSON list "
                        "or one id per line")
    parser.add_argument("--canaries", metavar="DIR", help="the target was trained on the training file of DIR "
                        "(`dpaudit canaries make`): audit it on DIR's canaries, a one-run bound (target.canaries)")
    parser.add_argument("--scores-kind", choices=("logits", "probabilities"), help="what a scores file holds")
    for flag, key, kind in (("--claim-epsilon", "claim_epsilon", float), ("--claim-delta", "claim_delta", float),
                            ("--claim-noise-multiplier", "claim_noise_multiplier", float),
                            ("--claim-sample-rate", "claim_sample_rate", float), ("--claim-steps", "claim_steps", int)):
        parser.add_argument(flag, type=kind, dest=key, help=f"the target's stated claim: target.{key}")
    parser.add_argument("--shadow-recipe", help="how the reference models train (audit.shadow_recipe: bitfit | full; "
                        "default bitfit)")
    parser.add_argument("--target-recipe", help="how the target was trained, as you state it (target.recipe: "
                        "unknown | bitfit | full; default unknown)")
    parser.add_argument("--mechanism-check", action="store_true",
                        help="also run `dpaudit verify` on the target's own DP step (audit.mechanism_check)")
    parser.add_argument("--reference", choices=("none", "non-private", "full-non-private"),
                        help="also audit a non-private reference on the same population, shown beside the target "
                             "in the report (audit.reference: non-private = a BiTFiT bank with the target's recipe, "
                             "full-non-private = one model fine-tuned in full; never gated)")
    parser.add_argument("--canary-count", type=int, metavar="M", help="add M crafted canaries to the population, "
                        "each IN for the target by a fair coin, and bound ε on them (audit.canaries; 0 = none)")
    parser.add_argument("--canary-kind", choices=("mislabeled", "unique"), help="what the canaries are "
                        "(audit.canary_kind; default mislabeled)")
    parser.add_argument("--rerun", choices=RERUNNABLE, help="recompute this stage and the ones after it")
    parser.add_argument("--format", default="html,md",
                        help="report formats written after the audit (subset of html,md,pdf; 'none' to skip)")
    parser.set_defaults(func=run, distributed=True)


class _PrintHandler(logging.Handler):
    """Shows a library log record as a plain line on the current ``sys.stdout``, like ``print``."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record))


def show_progress_messages(name: str = "dpaudit.pipeline") -> None:
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
    from dpaudit.reports.summary import CONFIDENTIAL

    p = report.privacy
    print(f"\n{CONFIDENTIAL} (audit.json and the reports are 0600; summary.json is the public part)")
    claim = ("no DP claim" if p.claim_source == "none" else "ε = ∞ (non-private)" if p.non_private
             else f"ε = {p.epsilon:.3g}, δ = {p.delta:.2g}" + (" (stated by the user)" if p.claim_source == "user" else ""))
    base = report.utility.majority_baseline
    base_txt = "" if base is None else f" (majority-class baseline {base:.4f})"
    print(f"claimed: {claim}; utility (target, held-out {report.utility.metric}) = {report.utility.value:.4f}{base_txt}")
    if report.attacks:
        print(f"{'attack':<14}{'AUC':>8}{'bal.acc':>9}{'TPR@1%':>9}{'ε_LB':>8}")
    for att in report.attacks:
        tpr = next((t.tpr for t in att.tpr_at_fpr if abs(t.fpr - 0.01) < 1e-12), None)
        lb = att.epsilon_lb.get("epsilon_lb")
        row = [f"{v:.3f}" if isinstance(v, float) else "n/a" for v in (att.auc, att.balanced_accuracy, tpr, lb)]
        print(f"{att.name:<14}{row[0]:>8}{row[1]:>9}{row[2]:>9}{row[3]:>8}")
    c = report.canary or {}
    if c and report.attacks:  # a canaries-only audit (--canaries DIR) states its bound in the canaries line
        from dpaudit.reports.summary import fmt_confidence

        share = (f", its share of the family's {fmt_confidence(c['family_significance'])}"
                 if c.get("family_significance") is not None else "")
        print(f"one-run audit (natural examples): ε_LB = {c.get('epsilon_lb', 0.0):.3f} at {fmt_confidence(c['significance'])} "
              f"confidence{share} ({c.get('num_correct')}/{c.get('num_guesses')} correct guesses)")
    target = report.run.target or {}
    if target.get("warning"):
        print(f"note: {target['warning']}")
    v = report.verdict
    if v.protection_level:
        print(f"protection level (strongest attack: {v.strongest_attack}): {v.protection_level}")
    _print_canaries(report)
    _print_comparison(report)


def _print_canaries(report) -> None:
    from dpaudit.reports.summary import canaries_sentence, power_sentence

    for line in (canaries_sentence(report), power_sentence(report)):
        if line:
            print(line)


def _print_comparison(report) -> None:
    """The non-private reference beside the target, one row each (nothing without a reference)."""
    from dpaudit.reports.summary import COMPARISON_COLUMNS, comparison_rows

    rows = comparison_rows(report)
    if not rows:
        return
    widths = [max(len(str(r[i])) for r in (COMPARISON_COLUMNS, *rows)) for i in range(len(COMPARISON_COLUMNS))]
    print("\nwithout DP vs the target (same population; the reference is never gated):")
    for row in (COMPARISON_COLUMNS, *rows):
        print("  ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(row, widths))))


def _audit(cfg, run_dir: Path, args: argparse.Namespace):
    """:func:`dpaudit.audit` after the input checks that need no torch; a run directory it
    created is removed again if it fails before finishing any work."""
    from dpaudit.cli.common import check_inputs
    from dpaudit.distributed import current
    from dpaudit.api import audit
    from dpaudit.pipeline.run import check_audit_config
    from dpaudit.rundir import removed_if_unfinished

    if cfg.model.task == "causal_lm":  # docs/causal-lm.md
        from types import SimpleNamespace

        from dpaudit.pipeline.lm_audit import run_lm_audit

        check_inputs(cfg, run_dir, command="audit", force_run_dir=args.force_run_dir)
        with removed_if_unfinished(run_dir, owner=True):
            done = run_lm_audit(cfg, run_dir, progress=not args.quiet, force_run_dir=args.force_run_dir)
        return SimpleNamespace(audit=done.report)
    check_audit_config(cfg)
    check_inputs(cfg, run_dir, command="audit", force_run_dir=args.force_run_dir)
    with removed_if_unfinished(run_dir, owner=current().is_main):
        return audit(cfg, run_dir=run_dir, progress=not args.quiet, force_run_dir=args.force_run_dir, rerun=args.rerun)


def audit_config(args: argparse.Namespace):
    """The resolved config and preset notes of parsed ``audit`` arguments (``dpaudit ui`` validates its form
    through this, so its messages are the CLI's). Raises ConfigError (one line)."""
    from dpaudit.config import load_config

    overrides = overrides_from_args(args)
    if args.shadows is not None:
        overrides.append(("audit", "num_shadows", args.shadows))
    if args.attacks:
        overrides.append(("audit", "attacks", [a.strip() for a in args.attacks.split(",") if a.strip()]))
    for flag, key in _TARGET_FLAGS:
        if getattr(args, flag) is not None:
            overrides.append(("target", key, getattr(args, flag)))
    if args.shadow_recipe:
        overrides.append(("audit", "shadow_recipe", args.shadow_recipe))
    if args.mechanism_check:
        overrides.append(("audit", "mechanism_check", True))
    if args.reference:
        overrides.append(("audit", "reference", args.reference.replace("-", "_")))
    if args.canary_count is not None:
        overrides.append(("audit", "canaries", args.canary_count))
    if args.canary_kind:
        overrides.append(("audit", "canary_kind", args.canary_kind))
    return load_config(args.config, overrides)


def run(args: argparse.Namespace) -> int:
    cfg, notes = audit_config(args)
    for note in notes:
        print(note)
    show_progress_messages()
    show_progress_messages("dpaudit.attacks")
    run_dir = Path(args.run_dir or f"runs/audit-{time.strftime('%Y%m%d-%H%M%S')}")
    outcome = _audit(cfg, run_dir, args)
    if outcome is None:  # a rank other than 0 under torchrun: rank 0 reports
        return 0
    _print_summary(outcome.audit)
    formats = [f.strip() for f in args.format.split(",") if f.strip() and f.strip() != "none"]
    if formats:
        from dpaudit.cli.main import build_parser

        # in this process and session (under torchrun a second session() would join the job twice);
        # a report error reaches main() as the audit's own
        report_args = build_parser().parse_args(["report", str(run_dir), "--format", ",".join(formats)])
        code = report_args.func(report_args)
        if code:
            return code
    print(f"audit.json written to {run_dir}; gate it with `dpaudit gate {run_dir}/audit.json --policy POLICY.toml`")
    return 0
