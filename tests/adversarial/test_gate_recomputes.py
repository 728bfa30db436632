"""Issue 21 items 6–8 and the mechanism check: the gate recomputes what it checks instead of reading it.

Each report here is edited the way a third party could edit an ``audit.json``; before the fix each one
passed the gate (exit 0).
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from dpaudit.privacy import compute_epsilon
from dpaudit.privacy.one_run import one_run_epsilon
from dpaudit.report_schema import AuditReport, MechanismCheck
from dpaudit.reports.gate import evaluate
from dpaudit.reports.policy import parse_policy
from tests.adversarial._gate_cli import gate as _gate, no_github, row as _row  # noqa: F401 (autouse fixture)
from tests.reports import sample


def _target(data: dict, kind: str) -> dict:
    data["run"]["target"] = {"kind": kind, "source": None, "sha256": None, "obtained": "test",
                             "recipe_differs": False}
    return data


EDITED = "report edited or produced by another accountant"


# --------------------------------------------------------------------------- item 6: ε from σ, q, steps, δ


def test_sample_epsilon_is_what_the_accountant_gives():
    """The reference the gate compares with: opacus' PRV accountant on the report's own σ, q, steps, δ."""
    p = sample.make_report().privacy
    own = compute_epsilon(noise_multiplier=p.noise_multiplier, sample_rate=p.sample_rate, steps=p.steps,
                          delta=p.delta, accountant=p.accountant, neighbouring=p.neighbouring)
    assert math.isclose(own, p.epsilon, rel_tol=1e-9) and own > 3.0


def test_epsilon_edited_below_what_sigma_q_steps_give_fails(tmp_path, capsys):
    data = sample.make_report().to_dict()
    data["privacy"]["epsilon"] = 0.5  # its σ, q, T give 3.39
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon = 1.0\n")
    assert code == 1 and "FAIL" in _row(out, "max_epsilon")
    assert EDITED in out and "give ε = 3.387" in out


def test_sigma_edited_with_epsilon_unchanged_fails(tmp_path, capsys):
    data = sample.make_report().to_dict()
    data["privacy"]["noise_multiplier"] = 0.01  # ε = ∞, in truth
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon = 8.0\n")
    assert code == 1 and "FAIL" in _row(out, "max_epsilon") and EDITED in out


@pytest.mark.parametrize("field, value", [("accountant", "rdp"), ("accountant", "moments"), ("delta", 1e-3),
                                          ("steps", 10), ("sample_rate", 0.5),
                                          ("neighbouring", "replace_one_unknown")])
def test_any_input_of_the_accountant_edited_fails(tmp_path, capsys, field, value):
    data = sample.make_report().to_dict()
    data["privacy"][field] = value
    code, out, err = _gate(tmp_path, capsys, data, "max_epsilon = 8.0\n")
    if code == 2:  # the schema refuses the value before the gate sees it
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
        return
    assert code == 1 and EDITED in _row(out, "max_epsilon"), out


def test_unedited_report_passes_with_the_recomputed_epsilon(tmp_path, capsys):
    code, out, _ = _gate(tmp_path, capsys, sample.make_report().to_dict(), "max_epsilon = 3.5\n")
    assert code == 0 and "recomputed from σ, q, steps, δ" in _row(out, "max_epsilon")
    code, out, _ = _gate(tmp_path, capsys, sample.make_report().to_dict(), "max_epsilon = 3.3\n")
    assert code == 1


def test_epsilon_without_sigma_q_steps_fails_for_a_dpaudit_target(tmp_path, capsys):
    data = _target(sample.make_report().to_dict(), "train")
    data["privacy"].update(noise_multiplier=0.0, sample_rate=0.0, steps=0, epsilon=0.5)
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon = 1.0\n")
    assert code == 1 and "stated without the σ, q, steps" in out


def test_claim_source_contradicting_the_target_kind_fails(tmp_path, capsys):
    data = _target(sample.make_report().to_dict(), "train")
    data["privacy"].update(noise_multiplier=0.0, sample_rate=0.0, steps=0, epsilon=0.5, claim_source="user")
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon = 1.0\n")
    assert code == 1 and "claim_source = 'user' but run.target.kind = 'train'" in out


def test_user_stated_epsilon_for_a_model_trained_elsewhere_is_gated_as_stated(tmp_path, capsys):
    data = _target(sample.make_report().to_dict(), "hf")
    data["privacy"].update(noise_multiplier=0.0, sample_rate=0.0, steps=0, epsilon=0.5, claim_source="user",
                           noise=None)
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon = 1.0\n")
    assert code == 0 and "stated by the user, not verified" in _row(out, "max_epsilon")


# --------------------------------------------------------------------------- item 7: noise from the target kind


def test_seeded_noise_hidden_as_a_user_claim_of_a_trained_target_fails(tmp_path, capsys):
    data = _target(sample.make_report(noise="seeded").to_dict(), "train")
    data["privacy"].update(noise=None, claim_source="user")
    code, out, _ = _gate(tmp_path, capsys, data, "max_auc = 0.9\n")
    assert code == 1 and "FAIL" in _row(out, "secure_noise") and "run.target.kind = train" in out


def test_unrecorded_noise_of_a_checkpoint_is_inconclusive(tmp_path, capsys):
    data = _target(sample.make_report(claim_source="checkpoint").to_dict(), "checkpoint")
    data["privacy"]["noise"] = None
    code, out, _ = _gate(tmp_path, capsys, data, "max_auc = 0.9\n")
    assert code == 3 and "INCONCLUSIVE" in _row(out, "secure_noise")
    data["privacy"]["claim_source"] = "user"  # the label does not change what the kind says
    code, out, _ = _gate(tmp_path, capsys, data, "max_auc = 0.9\n")
    assert code == 3 and "INCONCLUSIVE" in _row(out, "secure_noise")


@pytest.mark.parametrize("kind", ["hf", "scores"])
def test_user_claim_of_a_model_trained_elsewhere_carries_no_noise_record(tmp_path, capsys, kind):
    data = _target(sample.make_report().to_dict(), kind)
    data["privacy"].update(noise=None, claim_source="user")
    code, out, _ = _gate(tmp_path, capsys, data, "max_auc = 0.9\n")
    assert code == 0 and "stated by the user" in _row(out, "secure_noise")


def test_user_claim_without_a_recorded_target_is_not_taken_as_stated(tmp_path, capsys):
    data = sample.make_report().to_dict()
    assert data["run"].get("target") is None
    data["privacy"].update(noise=None, claim_source="user")
    code, out, _ = _gate(tmp_path, capsys, data, "max_auc = 0.9\n")
    assert code == 3 and "INCONCLUSIVE" in _row(out, "secure_noise")


# --------------------------------------------------------------------------- item 8: bounds at the policy's significance


def _one_run_canary(significance: float) -> dict:
    """170 of 200 guesses correct on 1000 canaries, stated at ``significance``."""
    bound = one_run_epsilon(num_correct=170, num_guesses=200, num_canaries=1000, delta=1e-5,
                            significance=significance)
    return {**bound.to_dict(), "n_in": 500, "n_out": 500, "strategy": "top_bottom", "components": []}


def test_one_run_bound_is_recomputed_at_the_policys_significance(tmp_path, capsys):
    at_policy = one_run_epsilon(num_correct=170, num_guesses=200, num_canaries=1000, delta=1e-5,
                                significance=0.05 / 5).epsilon_lb  # 4 attacks + the canary
    assert at_policy > 1.0
    for stated in (1e-12, 0.01):
        data = sample.make_report(canaries=False).to_dict()  # 5 sources: 0.05 / 5
        data["canary"] = _one_run_canary(stated)
        assert (data["canary"]["epsilon_lb"] == 0.0) is (stated == 1e-12)
        code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon_lb = 1.0\n")
        assert code == 1 and f"canary={at_policy:.4g}" in _row(out, "max_epsilon_lb"), out


def test_edited_counts_are_what_the_gate_reads(tmp_path, capsys):
    data = sample.make_report().to_dict()
    data["canary"] = {**_one_run_canary(0.01), "epsilon_lb": 0.0}  # the number edited, the counts kept
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon_lb = 1.0\n")
    assert code == 1


def test_policy_significance_changes_the_recomputed_bound(tmp_path, capsys):
    data = sample.make_report().to_dict()
    data["canary"] = _one_run_canary(0.01)
    strict = one_run_epsilon(num_correct=170, num_guesses=200, num_canaries=1000, delta=1e-5,
                             significance=1e-6 / 5).epsilon_lb
    assert strict < 1.0  # a stricter policy asks for more confidence, so the bound it reads is lower
    data["attacks"] = [{**a, "epsilon_lb": {**a["epsilon_lb"], "significance": 1e-6 / 5}} for a in data["attacks"]]
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon_lb = 1.0\nmax_significance = 1e-6\n")
    assert code == 0 and "PASS" in _row(out, "max_epsilon_lb")


def test_bound_without_counts_at_a_tiny_significance_is_no_pass(tmp_path, capsys):
    data = sample.make_report(canaries=False).to_dict()  # 5 sources: 0.05 / 5
    data["canary"].update(significance=1e-12, epsilon_lb=0.0)
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon_lb = 1.0\n")
    assert code == 3 and "stated at significance 1e-12, not the policy's 0.01" in out


def test_bound_without_counts_at_a_loose_significance_cannot_fail_alone(tmp_path, capsys):
    data = sample.make_report().to_dict()
    data["canary"].update(significance=0.4, epsilon_lb=1.5)
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon_lb = 1.0\n")
    assert code == 3 and "stated at significance 0.4" in out
    data["canary"].update(epsilon_lb=0.2)  # a pass at a looser significance holds at the policy's
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon_lb = 1.0\n")
    assert code == 0


@pytest.mark.parametrize("bad", ["0", "0.6", "-1", "\"x\""])
def test_max_significance_out_of_range_is_a_usage_error(tmp_path, capsys, bad):
    code, out, err = _gate(tmp_path, capsys, sample.make_report().to_dict(),
                           f"max_auc = 0.9\nmax_significance = {bad}\n")
    assert code == 2 and err.startswith("error: ") and "max_significance" in err


def test_max_significance_alone_checks_nothing(tmp_path, capsys):
    code, _, err = _gate(tmp_path, capsys, sample.make_report().to_dict(), "max_significance = 0.05\n")
    assert code == 2 and "the policy checks nothing" in err


# --------------------------------------------------------------------------- the mechanism check


def _mc(report: AuditReport, **changes) -> AuditReport:
    p = report.privacy
    base = dict(claimed_epsilon=p.epsilon, delta=p.delta, epsilon_lower_bound=0.6 * p.epsilon, confidence=0.95,
                num_canaries=20000, num_included=10000, steps=p.steps, sample_rate=p.sample_rate,
                noise_multiplier=p.noise_multiplier, tightness=0.6, passed=True, method="test", noise="secure",
                seed_published=False, wall_time_s=1.0)
    return dataclasses.replace(report, mechanism_check=MechanismCheck(**{**base, **changes}))


def _mc_status(report: AuditReport, policy: dict) -> tuple[str, str]:
    check = next(c for c in evaluate(report, parse_policy(policy, name="p")) if c.name == "mechanism_check")
    return check.status, check.message


def test_sound_mechanism_check_passes():
    assert _mc_status(_mc(sample.make_report()), {"min_mechanism_tightness": 0.5})[0] == "pass"


@pytest.mark.parametrize("changes, why", [
    ({"confidence": 0.5}, "below the policy's 0.95"),
    ({"steps": 10}, "not the report's σ"),
    ({"sample_rate": 0.02}, "not the report's σ"),
    ({"noise_multiplier": 5.0}, "not the report's σ"),
    ({"num_included": 20000}, "needs both included and excluded canaries"),
    ({"num_included": 0}, "needs both included and excluded canaries"),
    ({"num_canaries": 40, "num_included": 20}, "more than 40 canaries can show"),
])
def test_mechanism_check_of_another_mechanism_or_too_weak_is_no_pass(changes, why):
    status, message = _mc_status(_mc(sample.make_report(), **changes), {"min_mechanism_tightness": 0.5})
    assert status == "inconclusive" and why in message, message


def test_mechanism_check_confidence_follows_the_policy():
    report = _mc(sample.make_report(), confidence=0.9)
    assert _mc_status(report, {"require_mechanism_check": True})[0] == "inconclusive"
    assert _mc_status(report, {"require_mechanism_check": True, "max_significance": 0.1})[0] == "pass"


def test_mechanism_check_of_an_edited_epsilon_is_no_pass():
    """The report's ε and the check's claimed ε edited together: the recomputed ε is not the check's."""
    report = sample.make_report()
    edited = dataclasses.replace(report, privacy=dataclasses.replace(report.privacy, epsilon=6.0))
    status, message = _mc_status(_mc(edited, epsilon_lower_bound=4.0), {"min_mechanism_tightness": 0.5})
    assert status == "inconclusive" and "not the report's claim" in message
