"""One-run and f-DP one-run ε lower bounds against hand-computed cases and independent references.

The references below are written from the papers and from the published reference code's formulas
(jax_privacy ``auditing.py``: ``_one_run_p_value`` / ``_epsilon_one_run`` and ``_epsilon_one_run_fdp`` /
``_gaussian_dp_blow_up_inverse``), with a different root finder (doubling + brentq on the objective, as
the reference does) and exact integer binomials / scipy.stats distributions, so a shared bug cannot hide.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
from scipy.special import logit

from dpaudit.errors import ConfigError
from dpaudit.privacy import (
    EmpiricalEpsilon,
    gaussian_dp_epsilon,
    gaussian_mu,
    one_run_audit,
    one_run_epsilon,
    one_run_fdp_epsilon,
)

norm = scipy.stats.norm


def _steinke_p_value(eps: float, v: int, r: int, m: int, delta: float) -> float:
    """arXiv 2305.08846v1 Theorem 3 with exact integer binomials."""
    p = math.exp(eps) / (1 + math.exp(eps))

    def tail(lo: int) -> float:
        return sum(math.comb(r, j) * p**j * (1 - p) ** (r - j) for j in range(max(lo, 0), r + 1))

    beta = tail(v)
    if delta == 0 or v == 0:
        return beta
    return min(1.0, beta + max((tail(v - i) - beta) / i for i in range(1, v + 1)) * 2 * m * delta)


def _search_like_reference(objective) -> float:
    """Largest ε with objective(ε) > 0: doubling, then brentq (the reference code's search)."""
    if objective(0.0) <= 0:
        return 0.0
    lo, hi = 0.0, 1.0
    while objective(hi) > 0:
        lo, hi = hi, 2 * hi
    return scipy.optimize.brentq(objective, lo, hi, xtol=1e-7)


def _reference_one_run(v: int, r: int, m: int, delta: float, alpha: float) -> float:
    return _search_like_reference(lambda e: alpha - _steinke_p_value(e, v, r, m, delta))


def _reference_sigma(eps: float, delta: float) -> float:
    """σ of the analytic Gaussian mechanism (sensitivity 1) that is (ε, δ)-DP, with plain norm.cdf."""
    def gap(sigma):
        return norm.cdf(-eps * sigma + 0.5 / sigma) - math.exp(eps) * norm.cdf(-eps * sigma - 0.5 / sigma) - delta
    return scipy.optimize.brentq(gap, 1e-3, 1e9, xtol=1e-12)


def _reference_fdp(v: int, k: int, m: int, delta: float, alpha: float) -> float:
    def objective(eps):
        mu = 1 / _reference_sigma(eps, delta)
        r, h = alpha * v / m, alpha * (k - v) / m
        for i in range(v - 1, -1, -1):
            h_new = max(h, norm.cdf(norm.ppf(r) - mu))
            if h_new == h:
                break
            r, h = min(r + i / (k - i) * (h_new - h), 1.0), h_new
        return r + h - k / m
    return _search_like_reference(objective)


# --------------------------------------------------------------------------- hand-computed cases


def test_one_run_all_correct_pure_dp_has_closed_form():
    # δ = 0, v = r = k: the p-value is p^k, so ε_LB = logit(α^{1/k}).
    for k, alpha in [(10, 0.05), (40, 0.01)]:
        res = one_run_epsilon(num_correct=k, num_guesses=k, num_canaries=100, delta=0.0, significance=alpha,
                              tol=1e-7)
        assert res.epsilon_lb == pytest.approx(logit(alpha ** (1 / k)), abs=1e-6)
    assert logit(0.05 ** 0.1) == pytest.approx(1.0519, abs=1e-4)  # the k = 10 case by hand


def test_gaussian_mu_is_the_tight_gaussian_and_inverts_gdp_epsilon():
    for eps, delta in [(0.5, 1e-5), (1.0, 1e-5), (4.0, 1e-3), (8.0, 1e-6)]:
        mu = gaussian_mu(eps, delta)
        assert mu == pytest.approx(1 / _reference_sigma(eps, delta), rel=1e-6)
        assert gaussian_dp_epsilon(mu, delta) == pytest.approx(eps, abs=1e-6)


def test_fdp_single_guess_hand_case():
    # One correct guess (v = k = 1): r = α/m, h = 0; the one step (i = 0) sets h = Φ(Φ⁻¹(α/m) − μ) ≤ α/m
    # and leaves r, so r + h ≤ 2α/m < 1/m for α < ½: never rejected, ε_LB = 0 for every m.
    res = one_run_fdp_epsilon(num_correct=1, num_guesses=1, num_canaries=10, delta=1e-5, significance=0.05)
    assert res.status == "ok" and res.epsilon_lb == 0.0


# --------------------------------------------------------------------------- reference formulas


@pytest.mark.parametrize(("v", "r", "m", "delta"),
                         [(60, 80, 500, 1e-5), (45, 50, 200, 0.0), (95, 100, 1000, 1e-5), (180, 200, 400, 1e-3)])
def test_one_run_matches_reference_within_one_percent(v, r, m, delta):
    got = one_run_epsilon(num_correct=v, num_guesses=r, num_canaries=m, delta=delta, significance=0.05,
                          tol=1e-6).epsilon_lb
    assert got == pytest.approx(_reference_one_run(v, r, m, delta, 0.05), rel=0.01)


@pytest.mark.parametrize(("v", "k", "m", "delta"),
                         [(60, 80, 500, 1e-5), (45, 50, 200, 1e-5), (95, 100, 1000, 1e-5), (180, 200, 400, 1e-3),
                          (400, 400, 1000, 1e-5)])
def test_fdp_matches_reference_within_one_percent(v, k, m, delta):
    got = one_run_fdp_epsilon(num_correct=v, num_guesses=k, num_canaries=m, delta=delta, significance=0.05,
                              tol=1e-6).epsilon_lb
    assert got > 0
    assert got == pytest.approx(_reference_fdp(v, k, m, delta, 0.05), rel=0.01)


def test_fdp_is_tighter_than_one_run_on_the_same_counts():
    # The reason to run it: on identical counts the f-DP analysis rejects more (arXiv 2410.22235, Sec. 5).
    for v, k in [(60, 80), (95, 100), (300, 400)]:
        a = one_run_epsilon(num_correct=v, num_guesses=k, num_canaries=1000, delta=1e-5, significance=0.05)
        b = one_run_fdp_epsilon(num_correct=v, num_guesses=k, num_canaries=1000, delta=1e-5, significance=0.05)
        assert b.epsilon_lb > a.epsilon_lb > 0


# --------------------------------------------------------------------------- result fields


def test_each_result_names_its_method_theorem_experiment_and_kind():
    a = one_run_epsilon(num_correct=60, num_guesses=80, num_canaries=500, delta=1e-5, significance=0.05)
    b = one_run_fdp_epsilon(num_correct=60, num_guesses=80, num_canaries=500, delta=1e-5, significance=0.05)
    assert (a.method, a.experiment, a.kind) == ("one_run", "one_run", "bound") and "2305.08846v1" in a.theorem
    # f-DP needs a Gaussian trade-off curve, which an (ε, δ) claim does not promise: an estimate
    assert (b.method, b.experiment, b.kind) == ("one_run_fdp", "one_run", "estimate") and "2410.22235" in b.theorem
    assert a.assumption is None and "Gaussian" in b.assumption
    zero = one_run_fdp_epsilon(num_correct=5, num_guesses=5, num_canaries=5, delta=0.0, significance=0.05)
    assert zero.status == "inconclusive" and "delta > 0" in zero.reason


def test_audit_reports_the_one_run_bound_with_the_fdp_estimate_beside_it():
    rng = np.random.default_rng(0)
    included = rng.random(2000) < 0.5
    scores = included * 1.5 + rng.standard_normal(2000)
    res = one_run_audit(scores, included, num_guesses_in=100, num_guesses_out=100, delta=1e-5,
                        significance=0.05)
    comps = {c["method"]: c for c in res.components}
    assert set(comps) == {"one_run", "one_run_fdp"}
    # the only bound spends the whole significance; the estimate spends none and is never reported
    assert comps["one_run"]["significance"] == 0.05 and comps["one_run_fdp"]["significance"] == 0.05
    assert comps["one_run_fdp"]["kind"] == "estimate"
    assert res.significance == 0.05 and res.epsilon_lb == comps["one_run"]["epsilon_lb"]
    assert res.method == "one_run" and res.kind == "bound"
    v = comps["one_run"]["num_correct"]
    direct = one_run_epsilon(num_correct=v, num_guesses=200, num_canaries=2000, delta=1e-5, significance=0.05)
    assert comps["one_run"]["epsilon_lb"] == direct.epsilon_lb
    assert EmpiricalEpsilon.from_dict(res.to_dict()) == res
    single = one_run_audit(scores, included, num_guesses_in=100, num_guesses_out=100, delta=1e-5,
                           significance=0.05, estimators=("one_run",))
    assert single.method == "one_run" and single.components == () and single.significance == 0.05
    with pytest.raises(ConfigError, match="estimators must be distinct names"):
        one_run_audit(scores, included, num_guesses_in=1, num_guesses_out=1, delta=1e-5, significance=0.05,
                      estimators=("clopper_pearson",))
