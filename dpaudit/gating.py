"""``dpaudit.gate`` and ``dpaudit.render``: a report against a release policy, and a report as files.

What ``dpaudit gate`` and ``dpaudit report`` do, minus argparse and printing (the commands call these).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpaudit.errors import ConfigError

__all__ = ["FORMATS", "GateResult", "as_audit_report", "gate", "render"]

#: format → (module, writer function, output file name); imported on use.
WRITERS = {
    "html": ("dpaudit.reports.html", "write_html", "report.html"),
    "md": ("dpaudit.reports.markdown", "write_markdown", "report.md"),
    "pdf": ("dpaudit.reports.pdf", "write_pdf", "report.pdf"),
}
FORMATS = tuple(WRITERS)


def report_path(path: str | Path) -> Path:
    """``path`` itself, or ``path/audit.json`` when ``path`` is a directory."""
    p = Path(path)
    return p / "audit.json" if p.is_dir() else p


def as_audit_report(report: Any, *, mechanism_check: str | Path | None = None):
    """An :class:`~dpaudit.report_schema.AuditReport` from one, a :class:`dpaudit.api.Report`, or a path
    (``audit.json`` or its run directory; read and validated), with ``mechanism_check`` (a ``dpaudit
    verify`` file or its run directory) attached when given."""
    from dpaudit.report_io import load_report
    from dpaudit.report_schema import AuditReport

    if isinstance(report, (str, Path)):
        report = load_report(report_path(report))
    report = getattr(report, "audit", report)  # a dpaudit.api.Report
    if not isinstance(report, AuditReport):
        raise ConfigError(f"report must be an AuditReport, a dpaudit.Report or a path to audit.json, got "
                          f"{type(report).__name__}.")
    if mechanism_check is not None:
        from dpaudit.verify.attach import attach_mechanism_check

        report = attach_mechanism_check(report, mechanism_check)
    return report


@dataclass(frozen=True)
class GateResult:
    """The outcome of :func:`gate`.

    Attributes:
        checks: one :class:`~dpaudit.report_schema.Check` per policy check.
        policy: the :class:`~dpaudit.reports.policy.Policy` applied.
        report: the :class:`~dpaudit.report_schema.AuditReport` checked.
    """

    checks: tuple
    policy: Any
    report: Any

    @property
    def exit_code(self) -> int:
        """0 every check passed, 1 a check failed, 3 inconclusive (never a pass)."""
        from dpaudit.reports.gate import exit_code

        return exit_code(self.checks)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    @property
    def inconclusive(self) -> bool:
        return self.exit_code == 3

    def table(self) -> str:
        """The table ``dpaudit gate`` prints (cleaned strings only)."""
        from dpaudit.reports.gate import format_table

        return format_table(self.checks, self.policy)

    def junit_xml(self) -> str:
        """JUnit XML, one testcase per check (inconclusive = error)."""
        from dpaudit.reports.gate import junit_xml

        return junit_xml(self.checks, self.policy)

    def annotations(self) -> list[str]:
        """GitHub Actions ``::error`` lines for failing / inconclusive checks."""
        from dpaudit.reports.gate import github_annotations

        return list(github_annotations(self.checks, self.policy))

    def with_verdict(self):
        """The report with this policy, its checks and the outcome stored in its verdict."""
        from dpaudit.reports.gate import with_verdict

        return with_verdict(self.report, self.policy, self.checks)


def _policy(policy: Any):
    from dpaudit.reports.policy import Policy, load_policy, parse_policy

    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, Mapping):
        return parse_policy(dict(policy), name="policy")
    if isinstance(policy, (str, Path)):
        return load_policy(policy)
    raise ConfigError(f"policy must be a TOML path, a Policy or a mapping, got {type(policy).__name__}.")


def gate(report: Any, policy: Any, *, mechanism_check: str | Path | None = None) -> GateResult:
    """Check ``report`` against ``policy``: ``dpaudit gate`` as a function.

    Args:
        report: an AuditReport, a :class:`dpaudit.api.Report`, or a path (``audit.json`` or its run dir).
        policy: a policy TOML path, a :class:`~dpaudit.reports.policy.Policy`, or a mapping of policy keys.
        mechanism_check: a ``dpaudit verify`` result to attach first (policy ``require_mechanism_check``).

    The policy is validated before the report is read (a typo fails before any work).
    """
    from dpaudit.reports.gate import evaluate

    pol = _policy(policy)
    rep = as_audit_report(report, mechanism_check=mechanism_check)
    return GateResult(checks=evaluate(rep, pol), policy=pol, report=rep)


def render(report: Any, out_dir: str | Path, formats: Iterable[str] = ("html", "md"), *,
           mechanism_check: str | Path | None = None, force: bool = False) -> list[Path]:
    """Write ``report`` as ``report.html`` / ``report.md`` / ``report.pdf`` into ``out_dir``; returns the paths.

    ``out_dir`` is created if missing; an existing one must be a dpaudit run directory or hold only report
    files, unless ``force``. The renderers draw what the report stores and recompute nothing.
    """
    from dpaudit.fileio import refuse_symlink
    from dpaudit.rundir import MARKER

    chosen = tuple(dict.fromkeys(formats))
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise ConfigError(f"formats must be a non-empty subset of {','.join(FORMATS)}, got {list(formats)!r}.")
    if "pdf" in chosen:  # before any write: the requested set is written whole or not at all
        from dpaudit.reports.pdf import MISSING_ENGINE, find_chromium

        if find_chromium() is None:
            raise ConfigError(MISSING_ENGINE)
    rep = as_audit_report(report, mechanism_check=mechanism_check)
    out = Path(out_dir)
    refuse_symlink(out)
    names = {name for _, _, name in WRITERS.values()}
    if (out.is_dir() and not force and not (out / MARKER).is_file()
            and any(p.name not in names for p in out.iterdir())):
        raise ConfigError(f"--output '{out}' holds files other than reports; choose a new or empty directory, "
                          f"or pass --force-run-dir.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create output directory {out}: {err}") from None
    written = []
    for fmt in chosen:
        module_name, function, filename = WRITERS[fmt]
        written.append(getattr(importlib.import_module(module_name), function)(rep, out / filename))
    return written
