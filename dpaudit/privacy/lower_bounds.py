"""Clopper–Pearson ε lower bounds for independent runs, the GDP conversion, and re-exports.

**Score convention: a HIGHER score means MEMBER (IN).** An attack whose natural score is lower for
members (e.g. the loss) must be negated before it is passed here.

Which bound for which experiment:

* ONE trained model, population examples included independently with probability ½ (dpaudit's target):
  the one-run bounds of :mod:`dpaudit.privacy.one_run` and :mod:`dpaudit.privacy.fdp_one_run`
  (``experiment="one_run"``). The per-attack bounds and the canary audit of ``dpaudit audit`` use them.
* ONE observation per INDEPENDENTLY trained run (e.g. one canary's score across independent bank rows,
  or the runs of a white-box mechanism check): the Clopper–Pearson bounds below
  (``experiment="independent_runs"``). Applied to many examples scored by one model they are NOT valid:
  those errors are not independent trials.

Every bound holds with probability ≥ 1 − ``significance`` over the randomness of its experiment, uses
one-sided intervals and errs downward. Undefined inputs (no IN or no OUT scores, NaN scores, no guesses)
never produce a number for the gate: the result has ``status="inconclusive"``, a ``reason`` and
``epsilon_lb = 0.0``. ε is in nats; δ and significance are probabilities.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import scipy.optimize
import scipy.special
import scipy.stats

from dpaudit._validation import check_int, check_real
from dpaudit.errors import ConfigError
from dpaudit.privacy import empirical as _emp
from dpaudit.privacy._clopper_pearson import cp_epsilon, cp_upper, eps_from_rates
from dpaudit.privacy.empirical import EmpiricalEpsilon, THEOREMS
from dpaudit.privacy.empirical import check_delta as _check_delta
from dpaudit.privacy.empirical import check_significance as _check_significance
from dpaudit.privacy.one_run import _scores, one_run_audit, one_run_epsilon
from dpaudit.privacy.thresholds import (
    Bonferroni,
    Explicit,
    Split,
    ThresholdStrategy,
    best_threshold,
    counts_at,
)

__all__ = [
    "Bonferroni",
    "EmpiricalEpsilon",
    "Explicit",
    "Split",
    "ThresholdStrategy",
    "clopper_pearson_epsilon",
    "clopper_pearson_upper",
    "epsilon_from_rates",
    "epsilon_lower_bound",
    "gaussian_dp_epsilon",
    "one_run_audit",
    "one_run_epsilon",
]

def clopper_pearson_upper(k: int, n: int, significance: float) -> float:
    """One-sided Clopper–Pearson upper confidence bound on a binomial proportion.

    Returns p̄ with P[Binom(n, p̄) ≤ k] = significance, i.e. ``Beta.ppf(1 − significance, k + 1, n − k)``;
    the true proportion is ≤ p̄ with probability ≥ 1 − significance. ``n == 0`` or ``k == n`` gives 1.0.
    Never 0 when n > 0 (for k = 0 it is 1 − significance^{1/n}).

    Args:
        k: successes, 0 ≤ k ≤ n.
        n: trials ≥ 0.
        significance: in (0, 1).
    """
    n = check_int("n", n, 0)
    k = check_int("k", k, 0, n)
    return float(cp_upper(np.asarray(k), np.asarray(n), _check_significance(significance)))


def epsilon_from_rates(*, fpr_upper: float, fnr_upper: float, delta: float) -> float:
    """ε lower bound implied by upper bounds on an attack's FPR and FNR.

    An (ε, δ)-DP mechanism forces every test to satisfy FPR + e^ε·FNR ≥ 1 − δ and
    e^ε·FPR + FNR ≥ 1 − δ (Kairouz et al., arXiv 1311.0776, Theorem 2.1), hence (Nasr et al.,
    "Adversary instantiation", arXiv 2101.04535, Section 2, following Jagielski et al., arXiv 2006.07709)

        ε ≥ max{ log((1 − δ − FPR̄)/FNR̄), log((1 − δ − FNR̄)/FPR̄), 0 }.

    A term whose numerator is ≤ 0 contributes nothing. Rates must be > 0 — a Clopper–Pearson upper bound
    from n > 0 trials always is — so the result is always finite.

    Args:
        fpr_upper: upper bound on the false-positive rate, in (0, 1].
        fnr_upper: upper bound on the false-negative rate, in (0, 1].
        delta: δ in [0, 1).
    """
    f = check_real("fpr_upper", fpr_upper, 0.0, 1.0, closed="right")
    g = check_real("fnr_upper", fnr_upper, 0.0, 1.0, closed="right")
    return float(eps_from_rates(np.asarray(f), np.asarray(g), _check_delta(delta)))


def clopper_pearson_epsilon(
    *, tp: int, fn: int, fp: int, tn: int, delta: float, significance: float
) -> float:
    """ε lower bound from one confusion matrix, valid with probability ≥ 1 − ``significance``.

    One-sided Clopper–Pearson upper bounds on FPR = fp/(fp + tn) and FNR = fn/(fn + tp), each at
    ``significance / 2`` (union bound), fed to :func:`epsilon_from_rates` (arXiv 2101.04535, Section 2).
    The threshold that produced the counts must not have been chosen on these same counts, and each
    count must come from independent runs (one observation per independently trained model): the
    Clopper–Pearson interval assumes binomial counts.

    Args:
        tp: members predicted IN (count ≥ 0).
        fn: members predicted OUT (count ≥ 0).
        fp: non-members predicted IN (count ≥ 0).
        tn: non-members predicted OUT (count ≥ 0).
        delta: δ in [0, 1).
        significance: in (0, 1).
    """
    counts = [check_int(name, v, 0) for name, v in (("tp", tp), ("fn", fn), ("fp", fp), ("tn", tn))]
    sig, d = _check_significance(significance), _check_delta(delta)
    return float(cp_epsilon(*counts, delta=d, significance=sig))


def epsilon_lower_bound(
    in_scores: npt.ArrayLike,
    out_scores: npt.ArrayLike,
    *,
    delta: float,
    significance: float = 0.05,
    strategy: ThresholdStrategy = Split(),
) -> EmpiricalEpsilon:
    """Clopper–Pearson ε lower bound of a threshold attack on IN vs OUT scores (HIGHER = MEMBER).

    **Assumption (experiment ``"independent_runs"``):** each score is one observation from its own,
    independently trained run, so the counts at a fixed threshold are binomial. Scores of many examples
    under ONE trained model do not satisfy this; use :func:`dpaudit.privacy.one_run.one_run_audit` there.

    The attack predicts IN when score ≥ threshold. The threshold comes from ``strategy``: :class:`Split`
    picks it on one random part of the data and evaluates on the rest; :class:`Bonferroni` evaluates a
    fixed number of candidate thresholds on all data, each at ``significance / max_thresholds``;
    :class:`Explicit` uses the given value. The reported bound is :func:`clopper_pearson_epsilon` at the
    chosen threshold (arXiv 2101.04535), valid with probability ≥ 1 − ``significance``.

    Args:
        in_scores: array-like of shape (n_in,), scores of members.
        out_scores: array-like of shape (n_out,), scores of non-members.
        delta: δ in [0, 1).
        significance: in (0, 1), default=0.05.
        strategy: a :class:`ThresholdStrategy`, default=``Split()``.

    Returns:
        :class:`EmpiricalEpsilon`; ``status="inconclusive"`` (ε_LB = 0.0) for empty or NaN scores, or a
        split that leaves a part empty.
    """
    sig, d = _check_significance(significance), _check_delta(delta)
    if not isinstance(strategy, ThresholdStrategy):
        raise TypeError(f"strategy must be a ThresholdStrategy, got strategy={strategy!r}.")
    ins, outs = _scores("in_scores", in_scores), _scores("out_scores", out_scores)
    base = dict(significance=sig, delta=d, method="clopper_pearson", strategy=strategy.name,
                n_in=int(ins.size), n_out=int(outs.size), seed=getattr(strategy, "seed", None),
                theorem=THEOREMS["clopper_pearson"], experiment="independent_runs")

    def inconclusive(reason: str) -> EmpiricalEpsilon:
        return EmpiricalEpsilon(epsilon_lb=0.0, status="inconclusive", reason=reason, **base)

    problem = _unusable(ins, outs)
    if problem:
        return inconclusive(problem)
    if isinstance(strategy, Split) and strategy.seed is None:  # fresh entropy, recorded so it can be replayed
        base["seed"] = int(np.random.SeedSequence().generate_state(1)[0])
    found = _threshold_and_epsilon(ins, outs, strategy, seed=base["seed"], delta=d, significance=sig)
    if found is None:
        return inconclusive("too few scores to split into selection and evaluation parts")
    threshold, eps = found
    return EmpiricalEpsilon(epsilon_lb=eps, threshold=threshold, **base)


def _threshold_and_epsilon(ins: np.ndarray, outs: np.ndarray, strategy: ThresholdStrategy, *, seed: int | None,
                           delta: float, significance: float) -> tuple[float, float] | None:
    """``(threshold, ε bound)`` under ``strategy``; None when a split leaves a part empty."""
    match strategy:
        case Split(frac=frac):
            return _split_threshold(ins, outs, frac, np.random.default_rng(seed), delta=delta,
                                    significance=significance)
        case Bonferroni(max_thresholds=k):
            cands = strategy.candidates(np.concatenate([ins, outs]))
            tp, fn, fp, tn = counts_at(ins, outs, cands)
            all_eps = cp_epsilon(tp, fn, fp, tn, delta=delta, significance=significance / k)
            best = int(np.argmax(all_eps))
            return float(cands[best]), float(all_eps[best])
        case Explicit(threshold=t):
            tp, fn, fp, tn = counts_at(ins, outs, float(t))
            return float(t), float(cp_epsilon(tp, fn, fp, tn, delta=delta, significance=significance))
        case _:
            raise TypeError(f"unsupported threshold strategy {strategy!r}.")


def _unusable(ins: np.ndarray, outs: np.ndarray) -> str | None:
    """Why these scores give no bound (empty side, NaN), or None."""
    if ins.size == 0 or outs.size == 0:
        return f"need IN and OUT scores, got n_in={ins.size}, n_out={outs.size}"
    if np.isnan(ins).any() or np.isnan(outs).any():
        return "scores contain NaN"
    return None


def _split_threshold(ins: np.ndarray, outs: np.ndarray, frac: float, rng: np.random.Generator, *, delta: float,
                     significance: float) -> tuple[float, float] | None:
    """Threshold chosen on a random ``frac`` of each side, ε bound on the rest; None if a part is empty."""
    in_sel, in_eval = _partition(ins, frac, rng)
    out_sel, out_eval = _partition(outs, frac, rng)
    if min(in_sel.size, in_eval.size, out_sel.size, out_eval.size) == 0:
        return None
    threshold = best_threshold(in_sel, out_sel, delta=delta, significance=significance)
    tp, fn, fp, tn = counts_at(in_eval, out_eval, threshold)
    return threshold, float(cp_epsilon(tp, fn, fp, tn, delta=delta, significance=significance))


def _partition(x: np.ndarray, frac: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint random (selection, evaluation) parts of ``x``; selection gets ⌊frac·n⌋ elements."""
    perm = rng.permutation(x.size)
    cut = int(math.floor(frac * x.size))
    return x[perm[:cut]], x[perm[cut:]]


def gaussian_dp_epsilon(mu: float, delta: float, *, tol: float = 1e-10) -> float:
    """ε (nats) of a μ-GDP mechanism at δ (Dong, Roth, Su, arXiv 1905.02383, Corollary 2.13).

    μ-GDP is (ε, δ(ε))-DP for all ε ≥ 0 with ``δ(ε) = Φ(−ε/μ + μ/2) − e^ε·Φ(−ε/μ − μ/2)``, decreasing in ε.
    Solved for ε by a bracketed root search (``brentq``, absolute ``tol``); 0.0 when δ ≥ δ(0).

    Args:
        mu: μ ≥ 0 (for two unit-variance Gaussians, the distance between their means).
        delta: δ in (0, 1).
        tol: absolute tolerance on ε.

    Raises:
        ConfigError: the root lies above :data:`dpaudit.privacy.empirical.EPSILON_BRACKET_MAX`.
    """
    mu = check_real("mu", mu, 0.0, math.inf)
    d = check_real("delta", delta, 0.0, 1.0, closed="neither")
    if mu == 0.0:
        return 0.0

    def gap(eps: float) -> float:
        a = scipy.special.log_ndtr(-eps / mu + mu / 2)
        b = eps + scipy.special.log_ndtr(-eps / mu - mu / 2)
        return float(np.exp(a) - np.exp(b)) - d

    if gap(0.0) <= 0.0:
        return 0.0
    top = _emp.EPSILON_BRACKET_MAX
    if gap(top) > 0.0:
        raise ConfigError(f"epsilon of mu={mu!r}-GDP at delta={delta!r} exceeds "
                          f"{top:g}; use a larger delta or a smaller mu.")
    return float(scipy.optimize.brentq(gap, 0.0, top, xtol=tol))
