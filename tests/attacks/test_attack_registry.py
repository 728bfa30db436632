"""Registry behaviour and the conformance suite every registered attack must pass."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dpaudit.attacks.base import Attack
from dpaudit.attacks.registry import ATTACKS, create_attack, register_attack
from dpaudit.errors import ConfigError, DataError

EXPECTED = {"loss", "shadow", "lira_online", "lira_offline", "rmia"}


def test_all_attacks_registered():
    assert EXPECTED <= set(ATTACKS)
    for name, cls in ATTACKS.items():
        assert cls.name == name and cls.paper


def test_unknown_attack_lists_known_ones():
    with pytest.raises(ConfigError, match=r"unknown attack 'lira'; known attacks: .*lira_offline, lira_online"):
        create_attack("lira")


def test_unknown_option_is_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['variance'\] for attack 'lira_online'"):
        create_attack("lira_online", variance=True)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['x'\] for attack 'loss'; known options: \(none\)"):
        create_attack("loss", x=1)


def test_duplicate_registration_needs_force():
    class Dummy(Attack):
        def _score(self, signals, ref_membership, *, target, reference):
            return np.zeros(signals.n_examples)

    with pytest.raises(ValueError, match="attack 'loss' is already registered"):
        register_attack("loss")(Dummy)
    original = ATTACKS["loss"]
    try:
        register_attack("loss", force=True)(Dummy)
        assert ATTACKS["loss"] is Dummy
    finally:
        register_attack("loss", force=True)(original)
    with pytest.raises(TypeError, match="expects an Attack subclass"):
        register_attack("not_an_attack")(object)


@pytest.mark.parametrize("module", ["dpaudit.attacks", "dpaudit.attacks.lira", "dpaudit.attacks.rmia", "dpaudit.attacks.shadow",
                                    "dpaudit.attacks.loss", "dpaudit.attacks.metrics", "dpaudit.attacks.evaluate",
                                    "dpaudit.attacks.membership", "dpaudit.attacks.signals", "dpaudit.attacks.canary",
                                    "dpaudit.attacks.registry", "dpaudit.attacks.base"])
def test_every_name_in_all_exists(module):
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ lists missing {name}"


# ------------------------------------------------------------------------------- conformance


@pytest.fixture(params=sorted(EXPECTED | set(ATTACKS)))
def attack(request) -> Attack:
    return create_attack(request.param)


@pytest.mark.parametrize("target", [0, 3])
def test_conformance_shape_finite_and_blind_to_target_row(attack, small, target):
    m = small.membership
    reference = np.array([r for r in range(m.shape[0]) if r != target])
    scores = attack.score(small.signals, m, target=target, reference=reference)
    assert scores.shape == (small.signals.n_examples,) and scores.dtype == np.float64
    assert np.isfinite(scores).all()
    flipped = m.copy()
    flipped[target] = ~flipped[target]
    again = attack.score(small.signals, flipped, target=target, reference=reference)
    np.testing.assert_array_equal(scores, again)  # never reads the target's own membership row


def test_conformance_rejects_target_in_reference(attack, small):
    with pytest.raises(ConfigError, match="reference must not contain the target model 0"):
        attack.score(small.signals, small.membership, target=0, reference=np.arange(3))


def test_conformance_validates_membership(attack, small):
    with pytest.raises(DataError, match="membership must have shape"):
        attack.score(small.signals, small.membership[:, :5], target=0, reference=np.arange(1, 3))
    with pytest.raises(DataError, match="membership must be a bool array"):
        attack.score(small.signals, small.membership.astype(int), target=0, reference=np.arange(1, 3))
    with pytest.raises(ConfigError, match="reference must not repeat a model"):
        attack.score(small.signals, small.membership, target=0, reference=np.array([1, 1]))


def test_conformance_no_signal_gives_chance_auc(attack, no_signal):
    m = no_signal.membership
    y = m[0]
    scores = attack.score(no_signal.signals, m, target=0, reference=np.arange(1, m.shape[0]))
    n1, n0 = int(y.sum()), int((~y).sum())
    se = np.sqrt((n1 + n0 + 1) / (12 * n1 * n0))  # null standard error of the AUC
    assert abs(roc_auc_score(y, scores) - 0.5) < 4 * se


def test_conformance_signal_gives_better_than_chance(attack, strong_signal):
    m = strong_signal.membership
    scores = attack.score(strong_signal.signals, m, target=0, reference=np.arange(1, m.shape[0]))
    assert roc_auc_score(m[0], scores) > 0.6
