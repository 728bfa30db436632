from __future__ import annotations


import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dpaudit.attacks.loss import LossAttack
from dpaudit.attacks.rmia import Rmia, log_reference_probability
from dpaudit.errors import ConfigError


def _scores(syn, attack, target=0):
    m = syn.membership
    ref = np.array([r for r in range(m.shape[0]) if r != target])
    return attack.score(syn.signals, m, target=target, reference=ref)


def test_rmia_close_to_oracle_and_beats_loss(strong_signal):
    y = strong_signal.membership[0]
    oracle = roc_auc_score(y, strong_signal.oracle())
    rmia = roc_auc_score(y, _scores(strong_signal, Rmia()))
    assert abs(rmia - oracle) < 0.015
    assert rmia > roc_auc_score(y, _scores(strong_signal, LossAttack())) + 0.1


def test_score_is_fraction_of_dominated_population(small):
    scores = _scores(small, Rmia())
    n = small.signals.n_examples
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    # with z = every other example and γ = 1, scores are ranks / (N − 1)
    np.testing.assert_allclose(np.sort(scores) * (n - 1), np.arange(n))


def test_brute_force_pairwise_likelihood_ratio(small):
    attack = Rmia(gamma=1.3)
    scores = _scores(small, attack)
    ref = np.arange(1, small.signals.n_models)
    log_px = log_reference_probability(small.signals.log_prob_true[ref], small.membership[ref],
                                       offline=False, a=0.3)
    ratio = np.exp(small.signals.log_prob_true[0] - log_px)
    lr = ratio[:, None] / ratio[None, :]  # LR(x, z)
    np.fill_diagonal(lr, -np.inf)  # never compare x with itself
    n = ratio.size
    np.testing.assert_allclose(scores, (lr >= 1.3).sum(axis=1) / (n - 1))


def test_offline_interpolation_formula():
    log_p = np.log(np.array([[0.2, 0.5], [0.4, 0.9]]))
    in_ref = np.array([[False, True], [False, False]])
    a = 0.3
    got = np.exp(log_reference_probability(log_p, in_ref, offline=True, a=a))
    # example 0: mean_OUT = 0.3; example 1: only OUT reference 0.9
    np.testing.assert_allclose(got, [0.5 * ((1 + a) * 0.3 + 1 - a), 0.5 * ((1 + a) * 0.9 + 1 - a)])
    online = np.exp(log_reference_probability(log_p, in_ref, offline=False, a=a))
    np.testing.assert_allclose(online, [0.5 * ((1 + a) * 0.3 + 1 - a), 0.5 * (0.5 + 0.9)])


def test_offline_a_one_is_plain_out_average(strong_signal):
    y = strong_signal.membership[0]
    offline = roc_auc_score(y, _scores(strong_signal, Rmia(offline=True, offline_a=1.0)))
    assert offline > roc_auc_score(y, _scores(strong_signal, LossAttack())) + 0.1


def test_z_subsample_is_seeded(small):
    a = _scores(small, Rmia(n_z=50, seed=1))
    assert np.array_equal(a, _scores(small, Rmia(n_z=50, seed=1)))
    assert not np.array_equal(a, _scores(small, Rmia(n_z=50, seed=2)))
    assert a.min() >= 0.0 and a.max() <= 1.0


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"gamma": 0.0}, ConfigError, r"gamma must be in \(0.0, inf\)"),
    ({"offline_a": 1.5}, ConfigError, r"offline_a must be in \[0.0, 1.0\]"),
    ({"n_z": 1}, ConfigError, r"n_z must be in \[2, inf\]"),
    ({"offline": 1}, TypeError, "offline must be a bool"),
])
def test_invalid_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        Rmia(**kwargs)
