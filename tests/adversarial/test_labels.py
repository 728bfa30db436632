"""Labels that cannot mislead (issue 13): no "strong" without a DP claim, accuracy beside its baseline.

The mutant these tests catch: a level computed from the attacks alone, so that a non-private (or seeded,
or claim-less) model whose attacks happen to sit at chance reads "strong protection" — on the first
screen, in the gate, or through a report whose stored verdict was edited to say so.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dpaudit.protection import NO_GUARANTEE, has_dp_guarantee, majority_baseline, protection_level
from dpaudit.report_io import validate_report
from dpaudit.report_schema import UtilitySection, Verdict
from dpaudit.reports.gate import evaluate
from dpaudit.reports.markdown import render_markdown
from dpaudit.reports.policy import parse_policy
from dpaudit.reports.summary import summarize
from tests.reports import sample


def _at_chance(report):
    """``report`` with every attack at balanced accuracy 0.51 (the attacks found nothing)."""
    attacks = tuple(dataclasses.replace(a, balanced_accuracy=0.51, auc=0.51) for a in report.attacks)
    return dataclasses.replace(report, attacks=attacks)


def _unguaranteed_reports():
    private = sample.make_report()
    undefined = dataclasses.replace(private.privacy, epsilon=None, status="inconclusive", reason="test")
    return {
        "non_private": sample.make_report(non_private=True),
        "seeded_noise": sample.make_report(noise="seeded"),
        "no_claim": dataclasses.replace(private, privacy=dataclasses.replace(private.privacy, claim_source="none")),
        "undefined_epsilon": dataclasses.replace(private, privacy=undefined),
    }


@pytest.mark.parametrize("kind", sorted(_unguaranteed_reports()))
def test_no_claim_is_never_strong(kind):
    report = _at_chance(_unguaranteed_reports()[kind])
    assert not has_dp_guarantee(report.privacy)
    level = protection_level(0.51, guaranteed=has_dp_guarantee(report.privacy))
    assert level == NO_GUARANTEE
    # Even a report whose stored verdict was edited to "strong" shows and gates the recomputed level.
    forged = dataclasses.replace(report, verdict=Verdict(protection_level=level, strongest_attack="rmia"))
    text = summarize(forged).protection
    assert "strong" not in text.lower() and "no guarantee; these attacks found no leakage" in text
    tampered = dataclasses.replace(report, verdict=Verdict(protection_level="strong", strongest_attack="rmia"))
    for minimum in ("strong", "moderate", "weak"):
        check = evaluate(tampered, parse_policy({"min_protection_level": minimum}, name="p"))[-1]
        assert check.name == "min_protection_level" and check.status == "fail", check


def test_guaranteed_model_at_chance_is_strong():  # the positive control: the check is not always "fail"
    report = _at_chance(sample.make_report())
    assert has_dp_guarantee(report.privacy)
    assert protection_level(0.51, guaranteed=True) == "strong"
    check = evaluate(report, parse_policy({"min_protection_level": "strong"}, name="p"))[-1]
    assert check.status == "pass"


def test_leaky_model_is_weak_with_or_without_claim():
    assert protection_level(0.65, guaranteed=False) == "weak"
    assert protection_level(0.65, guaranteed=True) == "weak"


def test_majority_baseline_against_hand_count():
    assert majority_baseline(np.array([0, 1, 1, 1, 2])) == pytest.approx(0.6)
    assert majority_baseline(np.array([3])) == 1.0


def test_untrained_model_is_visible_on_the_first_screen():
    report = sample.make_report()
    untrained = dataclasses.replace(report, utility=UtilitySection(
        metric="accuracy", value=0.815, n_eval=500, per_model=(0.815,), majority_baseline=0.814))
    validate_report(untrained.to_dict())
    sentence = summarize(untrained).utility
    assert "majority-class baseline 0.814" in sentence and "may be untrained" in sentence
    assert "majority-class baseline 0.814" in render_markdown(untrained)
    trained = dataclasses.replace(untrained, utility=dataclasses.replace(untrained.utility, value=0.90))
    assert "untrained" not in summarize(trained).utility
