"""The gate's mechanism check (`dpaudit verify` results): missing, hand-edited or mismatched sections never pass,
a bound above the claim fails whatever the section's own flag says, and the renderers show the block."""

from __future__ import annotations

import dataclasses
import json

import pytest

from dpaudit.cli.main import main as run_cli
from dpaudit.report_io import validate_report
from dpaudit.report_schema import AuditReport, MechanismCheck
from dpaudit.reports.gate import evaluate
from dpaudit.reports.html import render_html
from dpaudit.reports.markdown import render_markdown
from dpaudit.reports.policy import parse_policy
from tests.reports import sample


@pytest.fixture(autouse=True)
def _no_github(monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def _mc(report: AuditReport, **changes) -> MechanismCheck:
    base = dict(claimed_epsilon=report.privacy.epsilon, delta=report.privacy.delta, epsilon_lower_bound=0.6 *
                report.privacy.epsilon, confidence=0.95, num_canaries=20000, num_included=10000,
                steps=report.privacy.steps, sample_rate=report.privacy.sample_rate,
                noise_multiplier=report.privacy.noise_multiplier, tightness=0.6, passed=True, method="test", noise="seeded",
                seed_published=False, wall_time_s=1.0)
    base.update(changes)
    return MechanismCheck(**base)


def _status(report: AuditReport, policy: dict) -> tuple[str, float | None]:
    check = next(c for c in evaluate(report, parse_policy(policy, name="p")) if c.name == "mechanism_check")
    return check.status, check.value


def test_required_but_missing_is_inconclusive():
    report = sample.make_report()
    assert report.mechanism_check is None
    assert _status(report, {"require_mechanism_check": True})[0] == "inconclusive"


def test_bound_above_claim_fails_even_if_the_section_says_passed():
    report = sample.make_report()
    eps = report.privacy.epsilon
    bad = dataclasses.replace(report, mechanism_check=_mc(report, epsilon_lower_bound=1.5 * eps, passed=True,
                                                          tightness=0.1))
    validate_report(bad.to_dict())
    status, value = _status(bad, {"require_mechanism_check": True})
    assert status == "fail" and value == pytest.approx(1.5)


def test_check_of_another_claim_is_inconclusive():
    report = sample.make_report()
    other = dataclasses.replace(report, mechanism_check=_mc(report, claimed_epsilon=report.privacy.epsilon * 4))
    assert _status(other, {"require_mechanism_check": True})[0] == "inconclusive"


def test_tightness_is_recomputed_and_compared():
    report = sample.make_report()
    loose = dataclasses.replace(report, mechanism_check=_mc(report, epsilon_lower_bound=0.2 * report.privacy.epsilon,
                                                            tightness=0.9))
    assert _status(loose, {"min_mechanism_tightness": 0.5}) == ("fail", pytest.approx(0.2))
    tight = dataclasses.replace(report, mechanism_check=_mc(report))
    assert _status(tight, {"min_mechanism_tightness": 0.5}) == ("pass", pytest.approx(0.6))


def test_policy_keys_are_validated():
    from dpaudit.errors import ConfigError

    with pytest.raises(ConfigError, match="min_mechanism_tightness"):
        parse_policy({"min_mechanism_tightness": 1.5}, name="p")
    with pytest.raises(ConfigError, match="require_mechanism_check"):
        parse_policy({"require_mechanism_check": "yes"}, name="p")
    with pytest.raises(ConfigError, match="checks nothing"):
        parse_policy({"require_mechanism_check": False}, name="p")


def test_gate_attaches_mechanism_check_file(tmp_path, capsys):
    report = sample.make_report()
    (tmp_path / "audit.json").write_text(json.dumps(report.to_dict()), encoding="utf-8")
    (tmp_path / "policy.toml").write_text("require_mechanism_check = true\n", encoding="utf-8")
    check = tmp_path / "mechanism_check.json"
    check.write_text(json.dumps(_mc(report, epsilon_lower_bound=2 * report.privacy.epsilon).to_dict()))
    args = ["gate", str(tmp_path / "audit.json"), "--policy", str(tmp_path / "policy.toml")]
    assert run_cli(args) == 3  # required, not attached: inconclusive
    assert run_cli(args + ["--mechanism-check", str(check)]) == 1  # attached, bound above the claim
    check.write_text(json.dumps({**_mc(report).to_dict(), "epsilon_lower_bound": "x"}))
    capsys.readouterr()
    assert run_cli(args + ["--mechanism-check", str(check)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "mechanism_check/epsilon_lower_bound" in err and len(err.splitlines()) == 1


def test_renderers_show_the_implementation_check():
    report = sample.make_report()
    assert "Implementation check" not in render_markdown(report)
    with_check = dataclasses.replace(report, mechanism_check=_mc(report, method="<script>x</script>"))
    md, page = render_markdown(with_check), render_html(with_check)
    assert "### Implementation check" in md and "ε\\_LB / ε" in md and "PASS" in md
    assert "Implementation check" in page and "<script>x" not in page


def test_report_cli_shows_an_attached_check(tmp_path, capsys):
    from dpaudit.rundir import RunDir

    report = sample.make_report()
    run = RunDir.claim(tmp_path / "run", command="audit")
    (run.path / "audit.json").write_text(json.dumps(report.to_dict()), encoding="utf-8")
    check = tmp_path / "mechanism_check.json"
    check.write_text(json.dumps(_mc(report).to_dict()))
    assert run_cli(["report", str(run.path), "--format", "md", "--mechanism-check", str(check)]) == 0
    assert "### Implementation check" in (run.path / "report.md").read_text(encoding="utf-8")
    assert json.loads((run.path / "audit.json").read_text())["mechanism_check"] is None  # file unchanged
