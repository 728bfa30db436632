"""``dpaudit report RUN_DIR --format html,md,pdf``: render ``RUN_DIR/audit.json``.

Writes ``report.html`` (self-contained, for compliance review), ``report.md`` (a PR-comment
summary) and ``report.pdf`` (for sign-off) into RUN_DIR or ``--output``. The renderers draw what
the report stores and recompute nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dpaudit.errors import ConfigError
from dpaudit.fileio import refuse_symlink
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
    parser.add_argument("--format", type=_formats, default=FORMATS, metavar="FORMATS",
                        help="comma-separated subset of html,md,pdf (default: all three)")
    parser.add_argument("--output", metavar="DIR", default=None,
                        help="directory to write into (default: RUN_DIR; created if missing; an existing one may "
                        "hold only report files)")
    parser.add_argument("--force-run-dir", action="store_true",
                        help="write into a directory dpaudit did not create (not recommended)")
    parser.add_argument("--mechanism-check", metavar="FILE", default=None,
                        help="mechanism_check.json from `dpaudit verify` (or its run directory): show its "
                             "implementation check block (audit.json itself is not changed)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Validate RUN_DIR/audit.json and write the requested formats; returns 0."""
    from dpaudit.gating import as_audit_report, render

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"run directory not found: {run_dir}; pass the directory `dpaudit audit` wrote.")
    report = as_audit_report(run_dir / "audit.json", mechanism_check=args.mechanism_check)
    filenames = {name for _, _, name in _WRITERS.values()}
    if args.output:
        out = Path(args.output)
        refuse_symlink(out)
        if out.is_dir() and not args.force_run_dir and any(p.name not in filenames for p in out.iterdir()):
            raise ConfigError(f"--output '{out}' holds files other than reports; choose a new or empty directory, "
                              f"or pass --force-run-dir.")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"cannot create output directory {out}: {err}") from None
    else:  # a run directory someone else made (a model dir, a home dir) is not written into
        out = RunDir.open_existing(run_dir, force=args.force_run_dir).path
    written = render(report, out, args.format, force=True)  # the directory was checked above
    for path in written:
        print(f"wrote {path}")
    return 0
