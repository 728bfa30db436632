"""``dpaudit report RUN_DIR --format html,md,pdf``: render ``RUN_DIR/audit.json``.

Writes ``report.html`` (self-contained, for compliance review), ``report.md`` (a PR-comment
summary) and ``report.pdf`` (the HTML printed by headless Chromium, for sign-off) into RUN_DIR or
``--output``. Without Chromium, asking for ``pdf`` is one ``error:`` line naming the package (exit 2)
before anything is written. The renderers draw what the report stores and recompute nothing.

``--sign-off reviewer="..." role="..." decision=approve`` records the reviewer's sign-off in
``RUN_DIR/audit.json`` (``sign_off``; fields merge with one already there) before rendering; fields
not given stay blank on the page, to fill in by hand. :func:`render_existing` re-renders the reports
already beside an ``audit.json`` (``dpaudit gate --write-verdict`` calls it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dpaudit.errors import ConfigError
from dpaudit.gating import FORMATS, WRITERS as _WRITERS
from dpaudit.rundir import RunDir

DESCRIPTION = "Render an audit report (RUN_DIR/audit.json) as HTML, Markdown and/or PDF."


def _formats(text: str) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise argparse.ArgumentTypeError(
            f"--format must be a comma-separated subset of {','.join(FORMATS)}, got {text!r}")
    return chosen


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``report`` on ``subparsers``."""
    parser = subparsers.add_parser("report", help="render audit.json as HTML / Markdown / PDF",
                                   description=DESCRIPTION)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory holding audit.json")
    parser.add_argument("--format", "--formats", type=_formats, default=FORMATS, metavar="FORMATS",
                        help="comma-separated subset of html,md,pdf (default: all three)")
    parser.add_argument("--output", metavar="DIR", default=None,
                        help="directory to write into (default: RUN_DIR; created if missing; an existing one may "
                        "hold only report files)")
    parser.add_argument("--force-run-dir", action="store_true",
                        help="write into a directory dpaudit did not create (not recommended)")
    parser.add_argument("--mechanism-check", metavar="FILE", default=None,
                        help="mechanism_check.json from `dpaudit verify` (or its run directory): show its "
                             "implementation check block (audit.json itself is not changed)")
    parser.add_argument("--sign-off", nargs="+", action="extend", metavar="KEY=VALUE", default=None,
                        help="record the sign-off in audit.json: reviewer=..., role=..., decision=approve|reject|"
                             "approve-with-conditions, conditions=..., date=YYYY-MM-DD|today (default: today "
                             "when a decision is given); fields left out stay blank to fill in by hand")
    parser.set_defaults(func=run)
    return parser


def _record_sign_off(run_dir: Path, report, pairs: list[str], *, force: bool):
    """``report`` with the ``--sign-off`` fields merged into its sign-off, saved to RUN_DIR/audit.json."""
    import dataclasses

    from dpaudit.report_io import dump_report
    from dpaudit.reports.signoff import merge_sign_off, parse_sign_off

    sign_off = merge_sign_off(report.sign_off, parse_sign_off(pairs))  # every check before any write
    RunDir.open_existing(run_dir, force=force)  # audit.json is rewritten only in a dpaudit run directory
    report = dataclasses.replace(report, sign_off=sign_off)
    dump_report(report, run_dir / "audit.json")
    return report


def render_existing(report, directory: str | Path) -> list[Path]:
    """Re-render every report file (``report.html``, ``report.md``, ``report.pdf``) already in ``directory``.

    For a command that has just rewritten ``directory/audit.json`` (``dpaudit gate --write-verdict``), so
    no report beside it shows a stale verdict. Prints nothing; returns the paths written (none when no
    report exists).

    Raises:
        ConfigError: a renderer failed (e.g. Chromium missing for ``report.pdf``); the others are written.
    """
    from dpaudit.gating import render

    directory = Path(directory)
    present = [fmt for fmt, (_, _, name) in _WRITERS.items() if (directory / name).is_file()]
    others = [fmt for fmt in present if fmt != "pdf"]
    written = render(report, directory, others, force=True) if others else []
    if "pdf" in present:  # last, so that a missing PDF engine leaves the others re-rendered
        written += render(report, directory, ("pdf",), force=True)
    return written


def run(args: argparse.Namespace) -> int:
    """Validate RUN_DIR/audit.json and write the requested formats; returns 0."""
    from dpaudit.gating import as_audit_report, render

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"run directory not found: {run_dir}; pass the directory `dpaudit audit` wrote.")
    report = as_audit_report(run_dir / "audit.json")
    if "pdf" in args.format:  # before any write: the requested set is written whole or not at all
        from dpaudit.reports.pdf import MISSING_ENGINE, find_chromium

        if find_chromium() is None:
            raise ConfigError(MISSING_ENGINE)
    if args.sign_off:
        report = _record_sign_off(run_dir, report, args.sign_off, force=args.force_run_dir)
    if args.mechanism_check is not None:
        from dpaudit.verify.attach import attach_mechanism_check

        report = attach_mechanism_check(report, args.mechanism_check)
    if args.output:  # render() refuses a directory holding other files unless --force-run-dir
        out, force = Path(args.output), args.force_run_dir
    else:  # a run directory someone else made (a model dir, a home dir) is not written into
        out, force = RunDir.open_existing(run_dir, force=args.force_run_dir).path, True
    written = render(report, out, args.format, force=force)
    for path in written:
        print(f"wrote {path}")
    return 0
