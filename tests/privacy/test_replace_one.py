"""The replace-one accountant ("pld", dp_accounting's PLD with REPLACE_ONE) against independent references.

* q = 1: one replace-one step is the Gaussian mechanism with sensitivity 2, T steps compose to one Gaussian
  with σ/√T; its exact δ(ε) is the analytic Gaussian curve (Balle & Wang, arXiv 1805.06530v2, Theorem 8),
  computed here with scipy — no dp_accounting code involved.
* Ordering: ε_AR(δ) ≤ ε_R1(δ) (replacing a record by one whose clipped gradient is 0 is a removal, so
  the replace-one worst case is at least the add/remove one), and a replacement is a removal then an
  addition, so applying the (ε, δ) definition twice gives ε_R1((1 + e^ε)δ) ≤ 2ε with ε = ε_AR(δ).
* Where the relations coincide (add/remove), "pld" agrees with opacus' PRV accountant.
* σ calibration and the budget guard use the relation they are asked for.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from dpaudit.errors import ConfigError
from dpaudit.privacy import calibrate_noise, compute_epsilon, max_steps, privacy_profile

GRID = [(1.0, 0.01, 1000), (1.5, 0.04, 300), (0.8, 0.1, 50), (4.0, 0.5, 20)]


def _analytic_gaussian_delta(eps: float, mu: float) -> float:
    """δ(ε) of N(0,1) vs N(μ,1): Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2)."""
    return float(norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2))


@pytest.mark.parametrize("sigma,steps", [(2.0, 1), (4.0, 10), (10.0, 100)])
def test_full_batch_replace_one_is_the_gaussian_with_sensitivity_two(sigma, steps):
    mu = 2.0 * math.sqrt(steps) / sigma  # sensitivity 2, T-fold composition
    eps = compute_epsilon(noise_multiplier=sigma, sample_rate=1.0, steps=steps, delta=1e-5, accountant="pld",
                          neighbouring="replace_one")
    # pessimistic: the accountant's ε meets δ, and only by its discretisation interval more than the exact ε
    assert _analytic_gaussian_delta(eps, mu) <= 1e-5 * (1 + 1e-6)
    assert _analytic_gaussian_delta(eps - 0.01, mu) > 1e-5
    # and it is exactly twice as far from the add/remove Gaussian: sensitivity 1 at q = 1
    ar = compute_epsilon(noise_multiplier=sigma, sample_rate=1.0, steps=steps, delta=1e-5, accountant="pld",
                         neighbouring="add_remove")
    assert _analytic_gaussian_delta(ar, mu / 2) <= 1e-5 * (1 + 1e-6) and ar < eps


@pytest.mark.parametrize("sigma,q,steps", GRID)
def test_replace_one_between_add_remove_and_group_privacy(sigma, q, steps):
    delta = 1e-5
    kw = dict(noise_multiplier=sigma, sample_rate=q, steps=steps, accountant="pld")
    ar = compute_epsilon(delta=delta, neighbouring="add_remove", **kw)
    r1 = compute_epsilon(delta=delta, neighbouring="replace_one", **kw)
    assert ar <= r1
    group_delta = (1 + math.exp(ar)) * delta
    if group_delta < 1:
        assert compute_epsilon(delta=group_delta, neighbouring="replace_one", **kw) <= 2 * ar + 1e-9


@pytest.mark.parametrize("sigma,q,steps", GRID)
def test_add_remove_pld_agrees_with_opacus_prv(sigma, q, steps):
    kw = dict(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=1e-5, neighbouring="add_remove")
    pld, prv = compute_epsilon(accountant="pld", **kw), compute_epsilon(accountant="prv", **kw)
    assert pld == pytest.approx(prv, abs=0.03, rel=0.01)  # each within its own discretisation error


def test_default_relation_is_replace_one_and_opacus_refuses_it():
    kw = dict(noise_multiplier=1.5, sample_rate=0.04, steps=300, delta=1e-5)
    assert compute_epsilon(**kw) == compute_epsilon(accountant="pld", neighbouring="replace_one", **kw)
    with pytest.raises(ConfigError, match=r"accountant 'prv' analyses add_remove neighbours only"):
        compute_epsilon(accountant="prv", **kw)
    with pytest.raises(ConfigError, match=r"neighbouring must be one of \{replace_one, add_remove\}"):
        compute_epsilon(neighbouring="substitution", **kw)


def test_calibration_and_budget_guard_use_the_relation():
    kw = dict(delta=1e-5, sample_rate=0.05, steps=200, accountant="pld")
    s_ar = calibrate_noise(target_epsilon=4.0, neighbouring="add_remove", **kw)
    s_r1 = calibrate_noise(target_epsilon=4.0, neighbouring="replace_one", **kw)
    assert s_r1 > s_ar  # replace-one needs more noise for the same ε
    assert compute_epsilon(noise_multiplier=s_r1, neighbouring="replace_one", **kw) <= 4.0
    assert compute_epsilon(noise_multiplier=s_ar, neighbouring="replace_one", **kw) > 4.0
    guard = max_steps(noise_multiplier=s_r1, sample_rate=0.05, target_epsilon=4.0, delta=1e-5, accountant="pld",
                      neighbouring="replace_one")
    assert 200 <= guard < max_steps(noise_multiplier=s_r1, sample_rate=0.05, target_epsilon=4.0, delta=1e-5,
                                    accountant="pld", neighbouring="add_remove")


def test_replace_one_profile_is_the_epsilon_curve():
    kw = dict(noise_multiplier=1.0, sample_rate=0.05, steps=100, accountant="pld", neighbouring="replace_one")
    eps = compute_epsilon(delta=1e-5, **kw)
    prof = privacy_profile(epsilons=np.array([eps - 0.05, eps]), **kw)
    assert prof.deltas[1] <= 1e-5 * (1 + 1e-6) < prof.deltas[0]
