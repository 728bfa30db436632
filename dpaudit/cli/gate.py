"""``dpaudit gate REPORT --policy policy.toml``: pass/fail a run in CI.

Prints one row per policy check. Exit codes: 0 every check passed, 1 a check failed, 2 usage or
input error (bad policy key or type, a policy that checks nothing, missing/truncated/invalid or
oversized report, NaN in the report, an input that is not a regular file (a FIFO, a device), a
``--junit`` folder that does not exist, a ``--junit`` file or a ``--write-verdict`` report that is a
symbolic link), 3 inconclusive (a required metric is missing, null or unresolvable, the privacy section
is not ``ok``, the canary is missing, the noise source is not recorded, a required mechanism check is
missing or of another claim; never a pass). ``--mechanism-check`` attaches a ``dpaudit verify`` result
to the report before the checks. The gate recomputes ε with the accountant (:mod:`reports.recompute`),
so it imports opacus (and torch) when the policy sets ``max_epsilon`` or a mechanism check.

Everything printed comes from the gate's cleaned strings (:mod:`dpaudit.sanitize`): a report
cannot put a line on stdout that starts with ``::`` (a workflow command) or an ESC byte; the only
``::`` lines are the gate's own annotations.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DESCRIPTION = ("Check an audit report against a release policy (TOML) and exit 0 pass, 1 fail, "
               "2 input error, 3 inconclusive.")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``gate`` on ``subparsers``."""
    parser = subparsers.add_parser("gate", help="pass/fail an audit report against a policy (CI)",
                                   description=DESCRIPTION,
                                   epilog="Exit codes: 0 pass, 1 fail, 2 usage/input error, 3 inconclusive.")
    parser.add_argument("report", metavar="REPORT",
                        help="audit.json, or a run directory containing one")
    parser.add_argument("--policy", required=True, metavar="TOML",
                        help="release policy file, or `default` for the shipped one (docs/gate.md lists the keys)")
    parser.add_argument("--junit", metavar="FILE", default=None,
                        help="also write JUnit XML, one testcase per check (inconclusive = error)")
    parser.add_argument("--annotations", choices=("github", "none"), default=None,
                        help="emit GitHub Actions ::error annotations for failing/inconclusive checks "
                             "(default: github when GITHUB_ACTIONS=true, else none)")
    parser.add_argument("--mechanism-check", metavar="FILE", default=None,
                        help="mechanism_check.json from `dpaudit verify` (or its run directory) to check with "
                             "the report (policy keys require_mechanism_check, min_mechanism_tightness)")
    parser.add_argument("--write-verdict", action="store_true",
                        help="store the policy, checks and outcome in the report's verdict (rewrites REPORT and re-renders the "
                             "report.html/.md/.pdf already beside it)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Evaluate the policy; returns the exit code (raises DpauditError for input errors)."""
    from dpaudit.errors import ConfigError
    from dpaudit.fileio import refuse_symlink, write_text_atomic
    from dpaudit.gating import gate
    from dpaudit.report_io import dump_report
    from dpaudit.reports.policy import load_policy

    policy = load_policy(args.policy)  # validate the policy first: a typo is exit 2 before any work
    junit = Path(args.junit) if args.junit else None
    if junit is not None and not junit.parent.is_dir():
        raise ConfigError(f"--junit folder {junit.parent} does not exist; create it or pass another path.")
    path = Path(args.report)
    if path.is_dir():
        path = path / "audit.json"
    # Outputs never go through a link (gate.xml -> ~/.ssh/authorized_keys committed in a PR): refused before
    # any work, and written by the atomic no-follow writer (which refuses a link planted meanwhile).
    for output in ([junit] if junit is not None else []) + ([path] if args.write_verdict else []):
        refuse_symlink(output)
    result = gate(path, policy, mechanism_check=args.mechanism_check)
    print(result.table())
    annotations = args.annotations
    if annotations is None:
        annotations = "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "none"
    if annotations == "github":
        for line in result.annotations():
            print(line)
    if junit is not None:
        try:
            write_text_atomic(junit, result.junit_xml(), private=False)
        except OSError as err:
            raise ConfigError(f"cannot write --junit file {junit}: {err.strerror or err}; pass a "
                              "writable path.") from None
    if args.write_verdict:
        dump_report(result.with_verdict(), path)
        _rerender(path)
    sys.stdout.flush()
    return result.exit_code


def _rerender(path: Path) -> None:
    """Re-render the reports already beside the rewritten ``path`` so none shows a stale verdict.

    A renderer that fails (e.g. no Chromium for ``report.pdf``) is one warning on stderr; the verdict is
    written and the gate's exit code stands.
    """
    from dpaudit.cli.report import render_existing
    from dpaudit.errors import DpauditError
    from dpaudit.report_io import load_report
    from dpaudit.sanitize import clean_text

    try:
        written = render_existing(load_report(path), path.parent)
    except DpauditError as err:
        print(f"warning: reports beside {clean_text(path, max_len=300)} not all re-rendered: "
              f"{clean_text(err, max_len=500)}; rerun `dpaudit report`.", file=sys.stderr)
    else:
        if written:
            print(f"re-rendered {', '.join(p.name for p in written)} with the verdict")
