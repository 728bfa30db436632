"""The canaries block and audit power in audit.json, the renderers and the gate.

The gate recomputes power (the cap from the canaries' public numbers, the steps from the privacy section) and
never reads the report's ``power`` section; power unmet is inconclusive (exit 3), never a pass.
"""

from __future__ import annotations

import dataclasses

import pytest

from dpaudit.protection import NOT_MEASURABLE, audit_power, protection_level
from dpaudit.report_io import validate_report
from dpaudit.report_schema import AuditReport
from dpaudit.reports import summary as S
from dpaudit.reports.gate import evaluate, exit_code
from dpaudit.reports.html import render_html
from dpaudit.reports.markdown import render_markdown
from dpaudit.reports.policy import parse_policy
from dpaudit.reports.power import canaries_sentence
from tests.reports import sample


@pytest.fixture
def report() -> AuditReport:
    return sample.make_report(canaries=True)


def _without_canaries(report: AuditReport) -> AuditReport:
    return dataclasses.replace(report, canaries=None)


def test_sample_round_trips_with_its_canaries(report):
    data = report.to_dict()
    validate_report(data)
    again = AuditReport.from_dict(data)
    assert again.canaries == report.canaries and again.canaries["epsilon_lb"]["kind"] == "bound"


def test_canaries_block_on_the_first_screen_of_every_renderer(report):
    sentence = canaries_sentence(report)
    c = report.canaries
    assert sentence.startswith("Canaries recognised: AUC ") and f"(cap {c['cap']:.3f})" in sentence
    assert S.summarize(report).canaries == sentence
    html, md = render_html(report), render_markdown(report)
    assert 'id="canaries-summary"' in html and "Canaries recognised" in html
    assert html.index("canaries-summary") < html.index('id="attack-summary"')  # the first screen
    assert "Canaries recognised" in md.split("### Attacks")[0]
    bare = _without_canaries(report)
    assert S.summarize(bare).canaries is None and "Canaries recognised" not in render_markdown(bare)
    assert "not measurable" in S.summarize(bare).power and 'id="power-warning"' in render_html(bare)


def test_pdf_shows_the_canaries_block(report, tmp_path):
    from dpaudit.reports.pdf import write_pdf

    path = write_pdf(report, tmp_path / "r.pdf")
    assert path.stat().st_size > 1000  # the text is drawn through S.summarize(report).canaries (above)


def test_power_checks_recompute_the_cap_and_the_steps(report):
    policy = parse_policy({"min_canary_cap": 1.0, "min_steps": 10}, name="power")
    checks = {c.name: c for c in evaluate(report, policy)}
    assert checks["min_canary_cap"].status == "pass" and checks["min_steps"].status == "pass"
    # a forged cap is not read: 20 canaries with 1 + 1 guesses can show nothing
    forged = dataclasses.replace(report, canaries={**report.canaries, "count": 20, "guesses_in": 1, "guesses_out": 1,
                                                   "cap": 50.0})
    assert {c.name: c for c in evaluate(forged, policy)}["min_canary_cap"].status == "inconclusive"
    one_step = dataclasses.replace(report, privacy=dataclasses.replace(report.privacy, steps=1))
    checks = evaluate(one_step, policy)
    assert {c.name: c for c in checks}["min_steps"].status == "inconclusive" and exit_code(checks) == 3
    bare = evaluate(_without_canaries(report), policy)
    assert {c.name: c for c in bare}["min_canary_cap"].status == "inconclusive" and exit_code(bare) == 3


def test_reference_leak_is_required_from_its_canary_bound(report):
    policy = parse_policy({"require_reference_leak": True}, name="ref")
    check = evaluate(report, policy)[-1]
    assert check.name == "require_reference_leak" and check.status == "inconclusive"


def test_no_power_never_reads_strong(report):
    assert protection_level(0.51, measurable=False) == NOT_MEASURABLE
    assert protection_level(0.65, measurable=False) == "weak"  # a measured leak stays a leak
    assert audit_power(1, report.canaries, None)[0] is False
    assert audit_power(1000, None, None)[0] is False and audit_power(1000, report.canaries, None)[0] is True
    leaky_ref = {"epsilon_lb": {"status": "ok", "kind": "bound", "epsilon_lb": 0.8}}
    assert audit_power(1000, None, leaky_ref)[0] is True
    # the gate's protection level is recomputed: a report stripped of its canaries is not measurable
    policy = parse_policy({"min_protection_level": "moderate"}, name="p")
    assert evaluate(report, policy)[-1].status == "pass"
    check = evaluate(_without_canaries(report), policy)[-1]
    assert check.status == "inconclusive" and "not measurable" in check.message


def test_schema_refuses_more_guesses_than_canaries(report):
    from dpaudit.errors import DataError

    data = report.to_dict()
    data["canaries"]["guesses_in"] = 195
    with pytest.raises(DataError, match="canaries"):
        validate_report(data)


def test_max_epsilon_lb_reads_the_canary_bound(report):
    """A leak the canaries show fails max_epsilon_lb, even when every attack reads ε_LB 0."""
    leaky = sample.sample_canaries(report.privacy.delta, shift=6.0)  # every guess right: ε_LB near the cap 1.25
    assert leaky["epsilon_lb"]["epsilon_lb"] > 1.0
    check = evaluate(dataclasses.replace(report, canaries=leaky), parse_policy({"max_epsilon_lb": 1.0}, name="p"))[-1]
    assert check.status == "fail" and "canaries" in check.message
    # the gate recomputes the bound from its counts: an edited number alone changes nothing
    edited = {**leaky, "epsilon_lb": {**leaky["epsilon_lb"], "epsilon_lb": 0.0}}
    check = evaluate(dataclasses.replace(report, canaries=edited), parse_policy({"max_epsilon_lb": 1.0}, name="p"))[-1]
    assert check.status == "fail"
