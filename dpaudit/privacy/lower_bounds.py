"""Empirical ε lower bounds from membership-inference scores.

**Score convention: a HIGHER score means MEMBER (IN).** An attack whose natural score is lower for
members (e.g. the loss) must be negated before it is passed here.

Every bound holds with probability ≥ 1 − ``significance`` over the randomness of the audit, uses one-sided
intervals, and errs downward (it may under-state leakage, never over-state it). Undefined inputs (no IN
or no OUT scores, NaN scores, no guesses) never produce a number for the gate: the result has
``status="inconclusive"``, a ``reason`` and ``epsilon_lb = 0.0``. ε is in nats; δ and significance are
probabilities.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.optimize
import scipy.special
import scipy.stats

from dpaudit._validation import check_int, check_real
from dpaudit.errors import ConfigError
from dpaudit.privacy._clopper_pearson import cp_epsilon, cp_upper, eps_from_rates
from dpaudit.privacy._search import bisect
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

#: Upper end of the ε search bracket (nats) of :func:`one_run_epsilon` and :func:`gaussian_dp_epsilon`.
EPSILON_BRACKET_MAX = 100.0


@dataclasses.dataclass(frozen=True)
class EmpiricalEpsilon:
    """An empirical ε lower bound, valid with probability ≥ 1 − ``significance``.

    Attributes:
        epsilon_lb: the lower bound in nats; 0.0 (never NaN) when ``status == "inconclusive"``.
        significance: allowed probability that the bound is wrong (one minus confidence).
        delta: the δ the bound is stated at.
        method: ``"clopper_pearson"`` or ``"one_run"``.
        strategy: how the threshold / guesses were chosen (``"split"``, ``"bonferroni"``,
            ``"explicit"``, ``"top_bottom"``, ``"counts"``).
        threshold: the decision threshold (predict IN when score ≥ threshold), if one was used.
        status: ``"ok"`` or ``"inconclusive"``; the gate treats anything but ``"ok"`` as failure.
        reason: why the result is inconclusive, else None.
        n_in: number of IN scores (members / included canaries) used, if known.
        n_out: number of OUT scores used, if known.
        seed: RNG seed of a random split, if any.
        saturated: True when a root search stopped at its bracket end, so the true bound is larger.
        num_guesses: one-run audit: guesses made.
        num_correct: one-run audit: correct guesses.
        schema_version: bumped only when a field is added.
    """

    epsilon_lb: float
    significance: float
    delta: float
    method: str
    strategy: str
    threshold: float | None = None
    status: str = "ok"
    reason: str | None = None
    n_in: int | None = None
    n_out: int | None = None
    seed: int | None = None
    saturated: bool = False
    num_guesses: int | None = None
    num_correct: int | None = None
    schema_version: int = 1

    def to_dict(self) -> dict[str, Any]:
        """A fresh JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmpiricalEpsilon:
        """Inverse of :meth:`to_dict`; keys this version does not know are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def _check_significance(significance: float) -> float:
    return check_real("significance", significance, 0.0, 1.0, closed="neither")


def _check_delta(delta: float) -> float:
    return check_real("delta", delta, 0.0, 1.0, closed="left")


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
    The threshold that produced the counts must not have been chosen on these same counts.

    Args:
        tp, fn: members predicted IN / OUT (counts ≥ 0).
        fp, tn: non-members predicted IN / OUT (counts ≥ 0).
        delta: δ in [0, 1).
        significance: in (0, 1).
    """
    counts = [check_int(name, v, 0) for name, v in (("tp", tp), ("fn", fn), ("fp", fp), ("tn", tn))]
    sig, d = _check_significance(significance), _check_delta(delta)
    return float(cp_epsilon(*counts, delta=d, significance=sig))


def _scores(name: str, values: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be 1-D, got shape {arr.shape}.")
    return arr


def epsilon_lower_bound(
    in_scores: npt.ArrayLike,
    out_scores: npt.ArrayLike,
    *,
    delta: float,
    significance: float = 0.05,
    strategy: ThresholdStrategy = Split(),
) -> EmpiricalEpsilon:
    """Clopper–Pearson ε lower bound of a threshold attack on IN vs OUT scores (HIGHER = MEMBER).

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
                n_in=int(ins.size), n_out=int(outs.size), seed=getattr(strategy, "seed", None))

    def inconclusive(reason: str) -> EmpiricalEpsilon:
        return EmpiricalEpsilon(epsilon_lb=0.0, status="inconclusive", reason=reason, **base)

    if ins.size == 0 or outs.size == 0:
        return inconclusive(f"need IN and OUT scores, got n_in={ins.size}, n_out={outs.size}")
    if np.isnan(ins).any() or np.isnan(outs).any():
        return inconclusive("scores contain NaN")

    match strategy:
        case Split(frac=frac, seed=seed):
            if seed is None:  # draw fresh entropy but record it, so the split can be replayed
                seed = int(np.random.SeedSequence().generate_state(1)[0])
                base["seed"] = seed
            rng = np.random.default_rng(seed)
            in_sel, in_eval = _partition(ins, frac, rng)
            out_sel, out_eval = _partition(outs, frac, rng)
            if min(in_sel.size, in_eval.size, out_sel.size, out_eval.size) == 0:
                return inconclusive("too few scores to split into selection and evaluation parts")
            threshold = best_threshold(in_sel, out_sel, delta=d, significance=sig)
            tp, fn, fp, tn = counts_at(in_eval, out_eval, threshold)
            eps = float(cp_epsilon(tp, fn, fp, tn, delta=d, significance=sig))
        case Bonferroni(max_thresholds=k):
            cands = strategy.candidates(np.concatenate([ins, outs]))
            tp, fn, fp, tn = counts_at(ins, outs, cands)
            all_eps = cp_epsilon(tp, fn, fp, tn, delta=d, significance=sig / k)
            best = int(np.argmax(all_eps))
            threshold, eps = float(cands[best]), float(all_eps[best])
        case Explicit(threshold=t):
            threshold = float(t)
            tp, fn, fp, tn = counts_at(ins, outs, threshold)
            eps = float(cp_epsilon(tp, fn, fp, tn, delta=d, significance=sig))
        case _:
            raise TypeError(f"unsupported threshold strategy {strategy!r}.")
    return EmpiricalEpsilon(epsilon_lb=eps, threshold=threshold, **base)


def _partition(x: np.ndarray, frac: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint random (selection, evaluation) parts of ``x``; selection gets ⌊frac·n⌋ elements."""
    perm = rng.permutation(x.size)
    cut = int(math.floor(frac * x.size))
    return x[perm[:cut]], x[perm[cut:]]


def _one_run_p_value(eps: float, *, num_correct: int, num_guesses: int, num_canaries: int,
                     delta: float) -> float:
    """Upper bound on P[≥ num_correct correct guesses] under an (ε, δ)-DP mechanism.

    arXiv 2305.08846v1, Theorem 3: with p = e^ε/(1 + e^ε), r guesses, m canaries and v correct,
    ``β = P[Binom(r, p) ≥ v]``, ``α = max_{1≤i≤v} P[v − i ≤ Binom(r, p) < v] / i`` and the p-value is
    ``min(1, β + α·2m·δ)``; for δ = 0 it is β.
    """
    p = float(scipy.special.expit(eps))
    v, r = num_correct, num_guesses
    beta = float(scipy.stats.binom.sf(v - 1, r, p))
    if delta == 0.0 or v == 0:
        return beta
    i = np.arange(1, v + 1)
    window = scipy.stats.binom.sf(v - i - 1, r, p) - beta  # P[v − i ≤ B < v]
    alpha = float(np.max(window / i))
    return min(1.0, beta + alpha * 2.0 * num_canaries * delta)


def one_run_epsilon(
    *,
    num_correct: int,
    num_guesses: int,
    num_canaries: int,
    delta: float,
    significance: float,
    tol: float = 1e-4,
) -> EmpiricalEpsilon:
    """ε lower bound of a one-run canary audit (Steinke, Nasr, Jagielski, arXiv 2305.08846v1, Theorem 3).

    Each of m canaries was included independently with probability ½; the auditor guessed IN/OUT for r of
    them and v guesses were right. The result is the largest ε whose p-value (see Theorem 3:
    ``min(1, β + α·2m·δ)`` with ``β = P[Binom(r, e^ε/(1+e^ε)) ≥ v]``) is ≤ ``significance``, found by
    bisection to ``tol`` and rounded down (pessimistic). If even ε = 0 cannot be rejected the bound is 0.0;
    if the search reaches :data:`EPSILON_BRACKET_MAX` the result has ``saturated=True``.

    Args:
        num_correct: v, correct guesses, 0 ≤ v ≤ r.
        num_guesses: r, guesses made, 0 ≤ r ≤ m.
        num_canaries: m ≥ 1, canaries randomised (guessed or not).
        delta: δ in [0, 1).
        significance: in (0, 1).
        tol: absolute tolerance on ε (nats), > 0.

    Returns:
        :class:`EmpiricalEpsilon` with ``method="one_run"``; inconclusive when no guess was made.
    """
    m = check_int("num_canaries", num_canaries, 1)
    r = check_int("num_guesses", num_guesses, 0, m)
    v = check_int("num_correct", num_correct, 0, r)
    d, sig = _check_delta(delta), _check_significance(significance)
    tol = check_real("tol", tol, 0.0, math.inf, closed="neither")
    base = dict(significance=sig, delta=d, method="one_run", strategy="counts",
                num_guesses=r, num_correct=v)
    if r == 0:
        return EmpiricalEpsilon(epsilon_lb=0.0, status="inconclusive", reason="no guesses were made",
                                **base)

    def rejected(eps: float) -> bool:
        pv = _one_run_p_value(eps, num_correct=v, num_guesses=r, num_canaries=m, delta=d)
        return pv <= sig

    if not rejected(0.0):
        return EmpiricalEpsilon(epsilon_lb=0.0, **base)
    if rejected(EPSILON_BRACKET_MAX):
        return EmpiricalEpsilon(epsilon_lb=EPSILON_BRACKET_MAX, saturated=True, **base)
    lo, hi = 0.0, EPSILON_BRACKET_MAX  # the p-value increases with ε: rejected(lo), not rejected(hi)
    lo, _ = bisect(lambda eps: not rejected(eps), lo, hi, tol=tol)
    return EmpiricalEpsilon(epsilon_lb=lo, **base)  # the rejected side: a valid lower bound


def one_run_audit(
    scores: npt.ArrayLike,
    included: npt.ArrayLike,
    *,
    num_guesses_in: int,
    num_guesses_out: int,
    delta: float,
    significance: float,
) -> EmpiricalEpsilon:
    """One-run audit from canary scores (HIGHER = MEMBER; arXiv 2305.08846v1, Algorithm 1 / Theorem 3).

    Guesses IN for the ``num_guesses_in`` highest scores and OUT for the ``num_guesses_out`` lowest, counts
    correct guesses against ``included`` and calls :func:`one_run_epsilon`. Ties are broken by position
    (stable sort). Valid only if each canary was included independently with probability ½.

    Args:
        scores: array-like of shape (m,), one score per canary.
        included: bool array-like of shape (m,), True for canaries that were trained on.
        num_guesses_in: k+ ≥ 0, IN guesses.
        num_guesses_out: k− ≥ 0, OUT guesses; k+ + k− ≤ m.
        delta: δ in [0, 1).
        significance: in (0, 1).

    Returns:
        :class:`EmpiricalEpsilon` with ``strategy="top_bottom"``; inconclusive for NaN scores or no guesses.
    """
    s = _scores("scores", scores)
    inc = np.asarray(included)
    if inc.dtype != np.bool_ or inc.shape != s.shape:
        raise ConfigError(f"included must be a bool array of shape {s.shape}, got dtype={inc.dtype}, "
                          f"shape={inc.shape}.")
    k_in = check_int("num_guesses_in", num_guesses_in, 0, s.size)
    k_out = check_int("num_guesses_out", num_guesses_out, 0, s.size - k_in)
    d, sig = _check_delta(delta), _check_significance(significance)
    counts = dict(n_in=int(inc.sum()), n_out=int((~inc).sum()))
    if s.size == 0 or np.isnan(s).any():
        reason = "no canaries" if s.size == 0 else "scores contain NaN"
        return EmpiricalEpsilon(epsilon_lb=0.0, significance=sig, delta=d, method="one_run",
                                strategy="top_bottom", status="inconclusive", reason=reason, **counts)
    order = np.argsort(-s, kind="stable")
    correct = int(inc[order[:k_in]].sum()) + int((~inc[order[s.size - k_out:]]).sum())
    res = one_run_epsilon(num_correct=correct, num_guesses=k_in + k_out, num_canaries=s.size,
                          delta=d, significance=sig)
    return dataclasses.replace(res, strategy="top_bottom", **counts)


def gaussian_dp_epsilon(mu: float, delta: float, *, tol: float = 1e-10) -> float:
    """ε (nats) of a μ-GDP mechanism at δ (Dong, Roth, Su, arXiv 1905.02383, Corollary 2.13).

    μ-GDP is (ε, δ(ε))-DP for all ε ≥ 0 with ``δ(ε) = Φ(−ε/μ + μ/2) − e^ε·Φ(−ε/μ − μ/2)``, decreasing in ε.
    Solved for ε by a bracketed root search (``brentq``, absolute ``tol``); 0.0 when δ ≥ δ(0).

    Args:
        mu: μ ≥ 0 (for two unit-variance Gaussians, the distance between their means).
        delta: δ in (0, 1).
        tol: absolute tolerance on ε.

    Raises:
        ConfigError: the root lies above :data:`EPSILON_BRACKET_MAX`.
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
    if gap(EPSILON_BRACKET_MAX) > 0.0:
        raise ConfigError(f"epsilon of mu={mu!r}-GDP at delta={delta!r} exceeds "
                          f"{EPSILON_BRACKET_MAX:g}; use a larger delta or a smaller mu.")
    return float(scipy.optimize.brentq(gap, 0.0, EPSILON_BRACKET_MAX, xtol=tol))
