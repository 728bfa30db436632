"""Attach a ``mechanism_check.json`` (written by ``dpaudit verify``) to an audit report for the gate/report."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from dpaudit.errors import DataError
from dpaudit.input_limits import read_capped
from dpaudit.report_schema import AuditReport, MechanismCheck
from dpaudit.sanitize import clean_text

#: Largest mechanism_check.json read (bytes); a real one is under 2 KB.
MAX_CHECK_BYTES = 2**16


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a finite number")


def attach_mechanism_check(report: AuditReport, path: str | Path) -> AuditReport:
    """``report`` with its ``mechanism_check`` section read from ``path`` (a file or a verify run directory).

    The file is validated with the report's schema (``audit-1.0.json``, ``$defs/mechanismCheck``).

    Raises:
        DataError: one line for a missing, oversized, non-JSON or invalid file (naming the failing path).
    """
    from dpaudit.report_io import validate_report

    path = Path(path)
    if path.is_dir():
        path = path / "mechanism_check.json"
    try:
        text = read_capped(path, MAX_CHECK_BYTES, what="mechanism check", error=DataError).decode("utf-8")
        data = json.loads(text, parse_constant=_reject_constant)
    except FileNotFoundError:
        raise DataError(f"mechanism check not found: {path}; run `dpaudit verify --run-dir DIR` first.") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise DataError(f"mechanism check {path} is not valid JSON: {clean_text(err, max_len=200)}; rerun "
                        f"`dpaudit verify`.") from None
    combined = report.to_dict()
    combined["mechanism_check"] = data
    try:
        validate_report(combined)
    except DataError as err:
        raise DataError(f"{path}: {err}") from None
    return dataclasses.replace(report, mechanism_check=MechanismCheck.from_dict(data))
