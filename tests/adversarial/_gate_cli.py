"""`dpaudit gate` run in-process on a report dict and a policy text, for the gate's adversarial tests."""

from __future__ import annotations

import json

import pytest

from dpaudit.cli.main import main as run_cli


@pytest.fixture(autouse=True)
def no_github(monkeypatch):
    """No GitHub annotations in the captured output."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def gate(tmp_path, capsys, data: dict, policy: str) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``dpaudit gate`` on ``data`` written as audit.json."""
    report = tmp_path / "audit.json"
    report.write_text(json.dumps(data, allow_nan=False), encoding="utf-8")
    policy_path = tmp_path / "policy.toml"
    policy_path.write_text(policy, encoding="utf-8")
    code = run_cli(["gate", str(report), "--policy", str(policy_path)])
    out, err = capsys.readouterr()
    return code, out, err


def row(out: str, check: str) -> str:
    """The printed table row of ``check``."""
    return next(line for line in out.splitlines() if line.startswith(check + " "))
