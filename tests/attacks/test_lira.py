from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dpaudit.attacks.lira import LiraOffline, LiraOnline, fit_gaussians
from dpaudit.attacks.loss import LossAttack
from dpaudit.errors import DataError


def _auc(syn, attack, target=0):
    m = syn.membership
    ref = np.array([r for r in range(m.shape[0]) if r != target])
    return roc_auc_score(m[target], attack.score(syn.signals, m, target=target, reference=ref))


@pytest.mark.parametrize("fix_variance", [True, False, None])
def test_online_matches_oracle_and_beats_loss(strong_signal, fix_variance):
    oracle = roc_auc_score(strong_signal.membership[0], strong_signal.oracle())
    lira = _auc(strong_signal, LiraOnline(fix_variance=fix_variance))
    loss = _auc(strong_signal, LossAttack())
    assert abs(lira - oracle) < 0.01
    assert lira > loss + 0.1  # per-example difficulty varies: calibration matters


def test_online_matches_oracle_when_effect_varies(synth):
    syn = synth(vary_effect=True, seed=11)
    oracle = roc_auc_score(syn.membership[0], syn.oracle())
    assert abs(_auc(syn, LiraOnline(fix_variance=True)) - oracle) < 0.01


def test_offline_is_close_to_oracle_with_constant_effect(strong_signal):
    # with a constant IN shift the oracle ranks by φ − μ_out(x), exactly what offline LiRA uses
    oracle = roc_auc_score(strong_signal.membership[0], strong_signal.oracle())
    offline = _auc(strong_signal, LiraOffline(fix_variance=True))
    assert abs(offline - oracle) < 0.01
    assert offline > _auc(strong_signal, LossAttack()) + 0.1


def test_gaussian_fit_recovers_parameters(strong_signal):
    phi, m = strong_signal.phi[1:], strong_signal.membership[1:]
    mu_in, var_in, mu_out, var_out = fit_gaussians(phi, m, fix_variance=True)
    assert np.abs(mu_in - strong_signal.mu_in).mean() < 0.1
    assert np.abs(mu_out - strong_signal.mu_out).mean() < 0.1
    # global variance is the pooled within-example variance, not the spread of the means
    assert np.sqrt(var_in[0]) == pytest.approx(strong_signal.sigma, rel=0.05)
    assert np.sqrt(var_out[0]) == pytest.approx(strong_signal.sigma, rel=0.05)


def test_fallbacks_for_examples_without_in_or_out_references():
    rng = np.random.default_rng(0)
    phi = rng.normal(size=(4, 6))
    in_ref = np.array([[1, 0, 1, 1, 0, 0], [0, 1, 1, 0, 1, 0], [1, 0, 1, 0, 0, 1], [0, 1, 1, 1, 1, 0]], bool)
    # example 2 has no OUT reference, example 5 a single IN reference
    mu_in, var_in, mu_out, var_out = fit_gaussians(phi, in_ref, fix_variance=False)
    for arr in (mu_in, var_in, mu_out, var_out):
        assert np.isfinite(arr).all()
    both = np.array([True, True, False, True, True, True])
    shift = np.mean([phi[in_ref[:, i], i].mean() - phi[~in_ref[:, i], i].mean() for i in np.flatnonzero(both)])
    assert mu_out[2] == pytest.approx(mu_in[2] - shift)
    assert mu_in[2] == pytest.approx(phi[:, 2].mean())


def test_too_few_references_is_a_data_error(small):
    m = small.membership
    with pytest.raises(DataError, match="LiRA needs ≥2 OUT reference models"):
        LiraOffline().score(small.signals, m, target=0, reference=np.array([1]))
    m = m.copy()
    m[3] = False  # references 1, 2, 3: every example has one IN and two OUT references
    with pytest.raises(DataError, match="LiRA needs ≥2 IN reference models"):
        LiraOnline().score(small.signals, m, target=0, reference=np.array([1, 2, 3]))


def test_fix_variance_type_is_checked():
    with pytest.raises(TypeError, match="fix_variance must be a bool or None"):
        LiraOnline(fix_variance="yes")
