from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

import pytest

from dpaudit.errors import ConfigError
from dpaudit.report_io import validate_report
from dpaudit.report_schema import MechanismCheck, TprAtFpr
from dpaudit.reports.gate import evaluate, exit_code, format_table, github_annotations, junit_xml, with_verdict
from dpaudit.reports.policy import POLICY_KEYS, Policy, TprLimit, load_policy, parse_policy
from tests.reports import sample

FULL = {
    "name": "prod", "max_epsilon": 8.0, "max_delta": 1e-5, "max_auc": 0.6,
    "max_tpr_at_fpr": [{"fpr": 0.001, "max_tpr": 0.01}, {"fpr": 0.01, "max_tpr": 0.05}],
    "max_epsilon_lb": 2.0, "min_nonmembers": 1000, "required_attacks": ["lira_online", "rmia"],
    "min_protection_level": "strong", "allow_non_private": False, "allow_seeded_noise": False,
    "require_mechanism_check": True, "min_mechanism_tightness": 0.5, "max_significance": 0.05,
    "min_canary_cap": 1.0, "min_steps": 10,
}


@pytest.fixture
def report(report):
    """The sample with a passing `dpaudit verify` section, so that FULL (every policy key) can pass."""
    p = report.privacy
    eps, delta = p.epsilon, p.delta
    check = MechanismCheck(claimed_epsilon=eps, delta=delta, epsilon_lower_bound=0.7 * eps, confidence=0.95,
                           num_canaries=1000, num_included=500, steps=p.steps, sample_rate=p.sample_rate,
                           noise_multiplier=p.noise_multiplier,
                           tightness=0.7, passed=True, method="test", noise="secure", seed_published=False,
                           wall_time_s=1.0)
    return dataclasses.replace(report, mechanism_check=check)


def statuses(checks):
    return {c.name: c.status for c in checks}


def test_full_policy_passes_on_sample(report):
    checks = evaluate(report, parse_policy(FULL, name="x"))
    assert set(statuses(checks).values()) == {"pass"}, format_table(checks, parse_policy(FULL, name="x"))
    assert exit_code(checks) == 0
    assert [c.name for c in checks][:4] == ["allow_non_private", "secure_noise", "max_epsilon", "max_delta"]


def test_policy_round_trip_and_keys():
    policy = parse_policy(FULL, name="ignored")
    assert policy.name == "prod"
    assert parse_policy(policy.to_dict(), name="ignored") == policy
    # require_reference_leak needs the reference's canary section (tests/adversarial/test_canary_power.py)
    assert set(FULL) | {"require_reference_leak"} == set(POLICY_KEYS)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
        policy.max_auc = 1.0


def test_single_tpr_table_is_accepted():
    policy = parse_policy({"max_tpr_at_fpr": {"fpr": 0.01, "max_tpr": 0.1}}, name="p")
    assert policy.max_tpr_at_fpr == (TprLimit(0.01, 0.1),)


@pytest.mark.parametrize(("data", "message"), [
    ({"max_epsilonn": 1.0}, "unknown policy key 'max_epsilonn'"),
    ({"max_epsilon": "8"}, "max_epsilon must be a real number"),
    ({"max_epsilon": float("nan")}, r"max_epsilon must be in \[0.0, inf\)"),
    ({"max_epsilon": float("inf")}, r"max_epsilon must be in \[0.0, inf\)"),
    ({"max_auc": 1.5}, r"max_auc must be in \[0.0, 1.0\]"),
    ({"min_nonmembers": 10.5}, "min_nonmembers must be an integer"),
    ({"required_attacks": "lira"}, "required_attacks must be a list"),
    ({"min_protection_level": "great"}, "min_protection_level must be one of"),
    ({"allow_non_private": "yes"}, "allow_non_private must be true or false"),
    ({"max_tpr_at_fpr": [{"fpr": 0.0, "max_tpr": 0.1}]}, r"max_tpr_at_fpr\[0\].fpr must be in \(0.0, 1.0\]"),
    ({"max_tpr_at_fpr": [{"fpr": 0.1}]}, r"max_tpr_at_fpr\[0\] must have exactly the keys"),
    ({"max_tpr_at_fpr": 3}, "max_tpr_at_fpr must be a table"),
])
def test_bad_policy_names_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_policy(data, name="p")


def test_load_policy_errors(tmp_path):
    with pytest.raises(ConfigError, match="policy file not found"):
        load_policy(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("max_auc = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_policy(bad)
    good = tmp_path / "release.toml"
    good.write_text("max_auc = 0.6\n[max_tpr_at_fpr]\nfpr = 0.01\nmax_tpr = 0.05\n")
    assert load_policy(good) == Policy(name="release", max_auc=0.6, max_tpr_at_fpr=(TprLimit(0.01, 0.05),))


def test_violations_fail(report):
    policy = parse_policy({"max_epsilon": 1.0, "max_auc": 0.55, "min_protection_level": "strong",
                           "max_tpr_at_fpr": {"fpr": 0.01, "max_tpr": 0.015},
                           "max_epsilon_lb": 0.2, "min_nonmembers": 5000,
                           "required_attacks": ["shadow", "lira_offline"]}, name="strict")
    got = statuses(evaluate(report, policy))
    assert got == {
        "allow_non_private": "pass", "secure_noise": "pass", "max_epsilon": "fail", "max_auc": "fail",
        "max_tpr_at_fpr[0.01]": "fail", "max_epsilon_lb": "fail", "min_nonmembers": "fail",
        "required_attacks[shadow]": "pass", "required_attacks[lira_offline]": "fail",
        "min_protection_level": "pass",
    }
    assert exit_code(evaluate(report, policy)) == 1


def test_non_private_fails_unless_allowed():
    report = sample.make_report(non_private=True)
    checks = evaluate(report, parse_policy({"max_epsilon": 10.0}, name="p"))
    assert statuses(checks) == {"allow_non_private": "fail", "max_epsilon": "fail"}
    assert "ε = ∞" in checks[1].message
    allowed = evaluate(report, parse_policy({"allow_non_private": True, "max_auc": 0.9}, name="p"))
    assert exit_code(allowed) == 0


def _with_attack(report, index, **changes):
    attacks = list(report.attacks)
    attacks[index] = dataclasses.replace(attacks[index], **changes)
    changed = dataclasses.replace(report, attacks=tuple(attacks))
    validate_report(changed.to_dict())
    return changed


def test_unresolvable_tpr_is_inconclusive(report):
    entries = tuple(TprAtFpr(fpr=t.fpr, tpr=None, tpr_std=None, resolvable=False) if t.fpr == 0.001 else t
                    for t in report.attacks[0].tpr_at_fpr)
    changed = _with_attack(report, 0, tpr_at_fpr=entries, n_nonmembers=500)
    checks = evaluate(changed, parse_policy({"max_tpr_at_fpr": {"fpr": 0.001, "max_tpr": 0.5}}, name="p"))
    assert statuses(checks)["max_tpr_at_fpr[0.001]"] == "inconclusive"
    assert "unresolvable with 500 non-members" in checks[-1].message
    assert exit_code(checks) == 3


def test_unmeasured_fpr_is_inconclusive(report):
    checks = evaluate(report, parse_policy({"max_tpr_at_fpr": {"fpr": 0.05, "max_tpr": 0.9}}, name="p"))
    assert checks[-1].status == "inconclusive" and "not measured" in checks[-1].message


def test_inconclusive_attack_is_not_a_pass_but_fail_dominates(report):
    changed = _with_attack(report, 0, status="inconclusive", reason="one-class labels", auc=None,
                           balanced_accuracy=None)
    lenient = evaluate(changed, parse_policy({"max_auc": 0.9, "min_protection_level": "weak"}, name="p"))
    assert statuses(lenient) == {"allow_non_private": "pass", "secure_noise": "pass",
                                 "max_auc": "inconclusive", "min_protection_level": "inconclusive"}
    assert "loss (one-class labels)" in lenient[2].message
    strict = evaluate(changed, parse_policy({"max_auc": 0.55}, name="p"))
    assert statuses(strict)["max_auc"] == "fail"


def test_inconclusive_and_saturated_lower_bounds(report):
    lb = dict(report.attacks[1].epsilon_lb, status="inconclusive", epsilon_lb=None, reason="too few")
    policy = parse_policy({"max_epsilon_lb": 5.0}, name="p")
    assert evaluate(_with_attack(report, 1, epsilon_lb=lb), policy)[-1].status == "inconclusive"
    saturated = dict(report.attacks[1].epsilon_lb, saturated=True)
    check = evaluate(_with_attack(report, 1, epsilon_lb=saturated), policy)[-1]
    assert check.status == "inconclusive" and "saturated" in check.message


def test_required_attack_inconclusive(report):
    changed = _with_attack(report, 3, status="inconclusive", reason="no reference models",
                           auc=None, balanced_accuracy=None)
    checks = evaluate(changed, parse_policy({"required_attacks": ["rmia"]}, name="p"))
    assert checks[-1].status == "inconclusive" and exit_code(checks) == 3


def test_no_attacks_is_inconclusive(report):
    empty = dataclasses.replace(report, attacks=())
    assert evaluate(empty, parse_policy({"max_auc": 0.6}, name="p"))[-1].status == "inconclusive"


def test_weak_protection_fails(report):
    changed = _with_attack(report, 2, balanced_accuracy=0.61)
    check = evaluate(changed, parse_policy({"min_protection_level": "moderate"}, name="p"))[-1]
    assert check.status == "fail" and "weak" in check.message


def test_junit_and_annotations(report):
    policy = parse_policy({"max_auc": 0.55, "max_tpr_at_fpr": {"fpr": 0.05, "max_tpr": 0.9},
                           "name": "rel,ease"}, name="p")
    checks = evaluate(report, policy)
    root = ET.fromstring(junit_xml(checks, policy))
    suite = root.find("testsuite")
    assert suite.get("tests") == "4" and suite.get("failures") == "1" and suite.get("errors") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["max_auc"].find("failure") is not None
    assert cases["max_tpr_at_fpr[0.05]"].find("error").get("type") == "inconclusive"
    assert len(list(cases["allow_non_private"])) == 0
    lines = github_annotations(checks, policy)
    assert len(lines) == 2 and all(line.startswith("::error title=dpaudit gate (rel%2Cease)%3A ") for line in lines)


def test_with_verdict_validates(report):
    policy = parse_policy(FULL, name="x")
    updated = with_verdict(report, policy, evaluate(report, policy))
    validate_report(updated.to_dict())
    assert updated.verdict.passed is True and updated.verdict.policy == "prod"
