"""Fixtures for report tests: a realistic sample report, validated against the schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reports import sample
from dpaudit.report_io import validate_report
from dpaudit.report_schema import AuditReport


@pytest.fixture
def report() -> AuditReport:
    """Four attacks, a δ(ε) profile, an ε history and a canary audit (schema-valid)."""
    built = sample.make_report()
    validate_report(built.to_dict())
    return built


@pytest.fixture
def report_path(tmp_path: Path, report: AuditReport) -> Path:
    """The sample report written as ``tmp_path/run/audit.json``."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path = run_dir / "audit.json"
    path.write_text(json.dumps(report.to_dict(), allow_nan=False), encoding="utf-8")
    return path
