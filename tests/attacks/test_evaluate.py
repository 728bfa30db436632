from __future__ import annotations

import jsonschema
import numpy as np
import pytest

from dpaudit.attacks.base import Attack
from dpaudit.attacks.evaluate import evaluate_attack
from dpaudit.attacks.lira import LiraOnline
from dpaudit.attacks.metrics import compute_metrics
from dpaudit.errors import ConfigError, DataError
from dpaudit.report_io import load_schema
from dpaudit.report_schema import AttackResult


def _validate_attack_entry(entry: dict) -> None:
    schema = load_schema()
    sub = {"$schema": schema.get("$schema"), "$defs": schema["$defs"], "$ref": "#/$defs/attack"}
    jsonschema.Draft202012Validator(sub).validate(entry)


def test_leave_one_out_mean_and_std(strong_signal):
    syn = strong_signal
    result = evaluate_attack("lira_online", syn.signals, syn.membership, targets=(0, 1, 2), delta=1e-5)
    assert isinstance(result, AttackResult)
    aucs, baccs = [], []
    partner = {0: 0, 1: 2, 2: 1}  # shadows 1 and 2 are a complementary pair
    for t in (0, 1, 2):
        ref = np.array([r for r in range(syn.signals.n_models) if r not in (t, partner[t])])
        metrics = compute_metrics(LiraOnline().score(syn.signals, syn.membership, target=t, reference=ref),
                                  syn.membership[t])
        aucs.append(metrics.auc)
        baccs.append(metrics.balanced_accuracy)
    assert result.status == "ok" and result.reason is None
    assert (result.name, result.target_model, result.n_targets) == ("lira_online", 0, 3)
    assert result.auc == pytest.approx(np.mean(aucs))
    assert result.auc_std == pytest.approx(np.std(aucs, ddof=1))
    assert result.balanced_accuracy == pytest.approx(np.mean(baccs))
    assert result.balanced_accuracy_std == pytest.approx(np.std(baccs, ddof=1))
    assert result.n_members == int(syn.membership[0].sum())
    assert result.n_members + result.n_nonmembers == syn.signals.n_examples
    assert result.epsilon_lb["status"] == "ok" and result.epsilon_lb["epsilon_lb"] > 0.5
    assert 0 < len(result.roc.fpr) <= 500
    by_fpr = {p.fpr: p for p in result.tpr_at_fpr}
    assert not by_fpr[1e-3].resolvable and by_fpr[1e-3].tpr is None  # ~1000 non-members only
    assert by_fpr[1e-1].resolvable and by_fpr[1e-1].tpr_std is not None
    data = result.to_dict()
    _validate_attack_entry(data)
    assert AttackResult.from_dict(data) == result


def test_single_target_has_no_std(small):
    result = evaluate_attack("loss", small.signals, small.membership, delta=1e-5)
    assert result.n_targets == 1 and result.auc_std is None and result.balanced_accuracy_std is None
    assert sum(result.histogram.in_counts) == result.n_members
    _validate_attack_entry(result.to_dict())


def test_no_signal_gives_near_zero_epsilon(no_signal):
    result = evaluate_attack("lira_online", no_signal.signals, no_signal.membership, delta=1e-5,
                             targets=(0, 1))
    assert result.status == "ok"
    assert abs(result.auc - 0.5) < 0.05
    assert result.epsilon_lb["epsilon_lb"] < 0.2


def test_one_class_target_is_inconclusive(small):
    m = small.membership.copy()
    m[0] = True
    result = evaluate_attack("loss", small.signals, m, delta=1e-5)
    assert result.status == "inconclusive" and "target model 0: one-class" in result.reason
    assert result.auc is None and result.roc.fpr == ()
    assert result.epsilon_lb["status"] == "inconclusive"
    _validate_attack_entry(result.to_dict())


def test_evaluate_argument_errors(small):
    with pytest.raises(ConfigError, match="unknown attack 'nope'"):
        evaluate_attack("nope", small.signals, small.membership, delta=1e-5)
    with pytest.raises(ConfigError, match="targets must be a non-empty list of distinct"):
        evaluate_attack("loss", small.signals, small.membership, delta=1e-5, targets=(1, 1))
    with pytest.raises(ConfigError, match=r"target must be in \[0, 8\]"):
        evaluate_attack("loss", small.signals, small.membership, delta=1e-5, targets=(9,))
    with pytest.raises(ConfigError, match=r"delta must be in \[0.0, 1.0\)"):
        evaluate_attack("loss", small.signals, small.membership, delta=1.0)


class _Spy(Attack):
    """Records the reference sets it is given; scores with −loss."""

    def __init__(self) -> None:
        self.references: dict[int, list[int]] = {}

    def _score(self, signals, ref_membership, *, target, reference):
        self.references[target] = reference.tolist()
        return -signals.loss[target]


def test_complementary_partner_is_not_a_reference(small):
    spy = _Spy()
    result = evaluate_attack(spy, small.signals, small.membership, targets=(0, 1, 4), delta=1e-5)
    assert spy.references[0] == list(range(1, 9))
    assert spy.references[1] == [0, 3, 4, 5, 6, 7, 8]  # row 2 = ~row 1 would reveal the target
    assert spy.references[4] == [0, 1, 2, 5, 6, 7, 8]
    assert result.name == "_Spy"


class _NanAttack(Attack):
    def _score(self, signals, ref_membership, *, target, reference):
        return np.full(signals.n_examples, np.nan)


def test_nan_scores_are_inconclusive_never_nan_numbers(small):
    result = evaluate_attack(_NanAttack(), small.signals, small.membership, delta=1e-5)
    assert result.status == "inconclusive" and "NaN" in result.reason
    assert result.epsilon_lb["status"] == "inconclusive"
    _validate_attack_entry(result.to_dict())


def test_wrong_membership_shape_is_a_data_error(small):
    with pytest.raises(DataError, match=r"membership must be a bool array of shape \(9, 300\)"):
        evaluate_attack("loss", small.signals, small.membership[:, :10], delta=1e-5)
