"""``dpaudit gate``: exit codes 0 pass, 1 fail, 2 input error, 3 inconclusive."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET

import pytest

from dpaudit.report_io import load_report, validate_report
from tests.reports import sample
from dpaudit.cli.main import main as run_cli

POLICY = """\
name = "release"
max_epsilon = 8.0
max_delta = 1e-5
max_auc = 0.60
max_epsilon_lb = 2.0
min_nonmembers = 1000
required_attacks = ["lira_online", "rmia"]
min_protection_level = "moderate"
allow_non_private = false

[[max_tpr_at_fpr]]
fpr = 0.001
max_tpr = 0.01

[[max_tpr_at_fpr]]
fpr = 0.01
max_tpr = 0.05
"""


def _write(tmp_path, report, text=None):
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    path = run_dir / "audit.json"
    data = report.to_dict()
    path.write_text(text if text is not None else json.dumps(data, allow_nan=False))
    return path


@pytest.fixture
def policy(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    return path


@pytest.fixture(autouse=True)
def _no_github(monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def test_pass(tmp_path, policy, capsys):
    path = _write(tmp_path, sample.make_report())
    assert run_cli(["gate", str(path), "--policy", str(policy)]) == 0
    out = capsys.readouterr().out
    assert "policy release: PASSED" in out and "max_tpr_at_fpr[0.001]" in out
    assert "::error" not in out


def test_run_directory_is_accepted(tmp_path, policy):
    path = _write(tmp_path, sample.make_report())
    assert run_cli(["gate", str(path.parent), "--policy", str(policy)]) == 0


def test_fail_with_junit_and_github_annotations(tmp_path, policy, capsys, monkeypatch):
    report = sample.make_report(non_private=True)
    path = _write(tmp_path, report)
    junit = tmp_path / "gate.xml"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert run_cli(["gate", str(path), "--policy", str(policy), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "::error title=dpaudit gate (release)%3A allow_non_private fail::" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert int(suite.get("failures")) >= 2


def test_annotations_none_overrides_env(tmp_path, policy, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    path = _write(tmp_path, sample.make_report(non_private=True))
    assert run_cli(["gate", str(path), "--policy", str(policy), "--annotations", "none"]) == 1
    assert "::error" not in capsys.readouterr().out


@pytest.mark.parametrize(("policy_text", "message"), [
    ("max_auc = 0.6\nmax_epsilom = 3\n", "unknown policy key 'max_epsilom'"),
    ("max_auc = \"0.6\"\n", "max_auc must be a real number"),
    ("max_auc = [\n", "is not valid TOML"),
])
def test_bad_policy_is_usage_error(tmp_path, capsys, policy_text, message):
    path = _write(tmp_path, sample.make_report())
    bad = tmp_path / "bad.toml"
    bad.write_text(policy_text)
    assert run_cli(["gate", str(path), "--policy", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: policy file") and message in err and err.count("\n") == 1


def test_missing_policy_and_report(tmp_path, policy, capsys):
    assert run_cli(["gate", str(tmp_path / "audit.json"), "--policy", str(tmp_path / "x.toml")]) == 2
    assert "policy file not found" in capsys.readouterr().err
    assert run_cli(["gate", str(tmp_path / "audit.json"), "--policy", str(policy)]) == 2
    assert "audit report not found" in capsys.readouterr().err


def test_truncated_report_is_input_error(tmp_path, policy, capsys):
    text = json.dumps(sample.make_report().to_dict())
    path = _write(tmp_path, sample.make_report(), text=text[:-40])
    assert run_cli(["gate", str(path), "--policy", str(policy)]) == 2
    err = capsys.readouterr().err
    assert "not valid JSON (truncated?)" in err and err.count("\n") == 1


def test_nan_metric_is_rejected_not_passed(tmp_path, policy, capsys):
    data = sample.make_report().to_dict()
    data["attacks"][2]["auc"] = float("nan")
    path = _write(tmp_path, sample.make_report(), text=json.dumps(data))
    assert run_cli(["gate", str(path), "--policy", str(policy)]) == 2
    assert "contains NaN" in capsys.readouterr().err


def test_unresolvable_tpr_is_inconclusive(tmp_path, policy, capsys):
    report = sample.make_report()
    attack = report.attacks[1]
    entries = tuple(dataclasses.replace(t, tpr=None, tpr_std=None, resolvable=False) if t.fpr == 0.001
                    else t for t in attack.tpr_at_fpr)
    attacks = list(report.attacks)
    attacks[1] = dataclasses.replace(attack, tpr_at_fpr=entries, n_nonmembers=800)
    # min_nonmembers = 1000 would fail; drop it so the only problem is the unresolvable metric.
    policy.write_text(POLICY.replace("min_nonmembers = 1000\n", ""))
    changed = dataclasses.replace(report, attacks=tuple(attacks))
    validate_report(changed.to_dict())
    path = _write(tmp_path, changed)
    assert run_cli(["gate", str(path), "--policy", str(policy)]) == 3
    out = capsys.readouterr().out
    assert "INCONCLUSIVE" in out and "unresolvable with 800 non-members" in out


def test_write_verdict(tmp_path, policy):
    path = _write(tmp_path, sample.make_report())
    assert run_cli(["gate", str(path), "--policy", str(policy), "--write-verdict"]) == 0
    verdict = load_report(path).verdict
    assert verdict.passed is True and verdict.policy == "release" and len(verdict.checks) == 12
