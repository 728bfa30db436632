"""f-DP one-run audit with the Gaussian trade-off (Mahloujifar, Melis, Chaudhuri, arXiv 2410.22235v1).

Experiment (``"one_run"``): one trained model; each of m canaries included independently with probability
½; the auditor guesses IN/OUT for k of them (a rule fixed before the scores are seen) and v guesses are
right. Claim tested: the mechanism is μ-GDP, i.e. its trade-off function is at least the Gaussian
``G_μ(x) = Φ(Φ⁻¹(1 − x) − μ)`` (Dong, Roth, Su, arXiv 1905.02383v3, Definition 2.7). The paper's
reconstruction audit with cap (Section 4, ``audit_rh_with_cap``) bounds what an f-DP mechanism lets the
auditor achieve; the reported ε is the largest ε at δ such that the μ(ε, δ)-GDP claim is rejected at
``significance``, where μ(ε, δ) is the μ whose GDP curve is tightly (ε, δ)-DP (Corollary 2.13 of
1905.02383).

**Assumption.** Rejecting μ-GDP rejects (ε, δ)-DP only for mechanisms whose trade-off curve is
Gaussian-shaped (the Gaussian mechanism; DP-SGD approximately, by the CLT of 1905.02383). For an arbitrary
(ε, δ)-DP mechanism (e.g. randomised response) it can exceed the true ε, so a claimed (ε, δ) cannot be
refuted by it: results are ``kind="estimate"`` (shown, never gated, never the headline) and say why in
``assumption``; :func:`dpaudit.privacy.one_run.one_run_epsilon` is the bound, for any (ε, δ)-DP mechanism.

Reference code: ``jax_privacy/auditing.py`` (``_epsilon_one_run_fdp``, ``_gaussian_dp_blow_up_inverse``);
this is an independent rewrite of the same recursion (no dp_accounting dependency: μ(ε, δ) is solved
here with ``brentq``).
"""

from __future__ import annotations

import math

import scipy.optimize
import scipy.special

from dpaudit._validation import check_int, check_real
from dpaudit.privacy import empirical as _emp
from dpaudit.privacy._search import bisect
from dpaudit.privacy.empirical import EmpiricalEpsilon, THEOREMS, check_delta, check_significance

__all__ = ["gaussian_mu", "one_run_fdp_epsilon"]


def _gdp_delta(mu: float, eps: float) -> float:
    """δ(ε) of μ-GDP: Φ(−ε/μ + μ/2) − e^ε·Φ(−ε/μ − μ/2) (1905.02383v3, Corollary 2.13), μ > 0."""
    a = scipy.special.log_ndtr(-eps / mu + mu / 2)
    b = eps + scipy.special.log_ndtr(-eps / mu - mu / 2)
    return float(math.exp(a) - math.exp(b)) if a > b else 0.0


def gaussian_mu(epsilon: float, delta: float, *, tol: float = 1e-12) -> float:
    """μ of the Gaussian mechanism that is tightly (ε, δ)-DP: the μ > 0 with δ_μ(ε) = δ.

    δ_μ(ε) (:func:`_gdp_delta`) increases in μ from 0 to 1, so the root is unique; found by ``brentq``
    to absolute ``tol``. Equals 1/σ of ``dp_accounting.get_sigma_gaussian(ε, δ)`` (sensitivity 1).

    Args:
        epsilon: ε ≥ 0 in nats.
        delta: δ in (0, 1).
        tol: absolute tolerance on μ.
    """
    eps = check_real("epsilon", epsilon, 0.0, math.inf)
    d = check_real("delta", delta, 0.0, 1.0, closed="neither")
    hi = 1.0
    while _gdp_delta(hi, eps) < d:
        hi *= 2.0
    return float(scipy.optimize.brentq(lambda mu: _gdp_delta(mu, eps) - d, 1e-300, hi, xtol=tol))


def _falsifies(eps: float, *, v: int, k: int, m: int, delta: float, significance: float) -> bool:
    """True when v correct of k guesses on m canaries reject μ(ε, δ)-GDP at ``significance``.

    The recursion of 2410.22235v1 Section 4 (reconstruction with cap): start from r = α·v/m,
    h = α·(k − v)/m; for i = v − 1, …, 0 raise h to ``G⁻¹(r) = Φ(Φ⁻¹(r) − μ)`` (the inverse blow-up of
    the Gaussian trade-off) and r by i/(k − i) times that increase (capped at 1); the claim is rejected
    when r + h > k/m.
    """
    mu = gaussian_mu(eps, delta)
    r = significance * v / m
    h = significance * (k - v) / m
    for i in range(v - 1, -1, -1):
        h_new = max(h, float(scipy.special.ndtr(scipy.special.ndtri(r) - mu)))
        if h_new == h:  # from here on neither h nor r changes
            break
        r = min(r + i / (k - i) * (h_new - h), 1.0)
        h = h_new
    return r + h > k / m


def one_run_fdp_epsilon(
    *,
    num_correct: int,
    num_guesses: int,
    num_canaries: int,
    delta: float,
    significance: float,
    tol: float = 1e-4,
) -> EmpiricalEpsilon:
    """ε lower bound of a one-run audit under the Gaussian trade-off (arXiv 2410.22235v1, Section 4).

    The largest ε (nats) such that v correct of k guesses on m canaries reject "the mechanism is
    μ(ε, δ)-GDP" at ``significance`` (see the module docstring), found by bisection to ``tol`` and
    rounded down. 0.0 when even ε = 0 is not rejected; ``saturated=True`` at
    :data:`dpaudit.privacy.empirical.EPSILON_BRACKET_MAX`.

    Args:
        num_correct: v, correct guesses, 0 ≤ v ≤ k.
        num_guesses: k, guesses made, 0 ≤ k ≤ m.
        num_canaries: m ≥ 1.
        delta: δ in (0, 1); δ = 0 gives an inconclusive result (μ-GDP with μ > 0 is never (ε, 0)-DP).
        significance: in (0, 1).
        tol: absolute tolerance on ε (nats), > 0.

    Returns:
        :class:`EmpiricalEpsilon` with ``method="one_run_fdp"``, ``experiment="one_run"``,
        ``kind="estimate"`` and the Gaussian-trade-off ``assumption``; inconclusive when no guess was made
        or δ = 0.
    """
    m = check_int("num_canaries", num_canaries, 1)
    k = check_int("num_guesses", num_guesses, 0, m)
    v = check_int("num_correct", num_correct, 0, k)
    d, sig = check_delta(delta), check_significance(significance)
    tol = check_real("tol", tol, 0.0, math.inf, closed="neither")
    base = dict(significance=sig, delta=d, method="one_run_fdp", strategy="counts", num_guesses=k,
                num_correct=v, theorem=THEOREMS["one_run_fdp"], experiment="one_run",
                assumption=_emp.GAUSSIAN_TRADEOFF_ASSUMPTION, kind="estimate")
    if k == 0 or d == 0.0:
        reason = "no guesses were made" if k == 0 else "the f-DP one-run bound needs delta > 0"
        return EmpiricalEpsilon(epsilon_lb=0.0, status="inconclusive", reason=reason, **base)

    def rejected(eps: float) -> bool:
        return _falsifies(eps, v=v, k=k, m=m, delta=d, significance=sig)

    top = _emp.EPSILON_BRACKET_MAX
    if not rejected(0.0):
        return EmpiricalEpsilon(epsilon_lb=0.0, **base)
    if rejected(top):
        return EmpiricalEpsilon(epsilon_lb=top, saturated=True, **base)
    lo, _ = bisect(lambda eps: not rejected(eps), 0.0, top, tol=tol)  # rejection shrinks as ε grows
    return EmpiricalEpsilon(epsilon_lb=lo, **base)
