"""One-run ε lower bounds (Steinke, Nasr, Jagielski, arXiv 2305.08846v1), and the one-run audit.

Experiment (``"one_run"``): ONE trained model; each of m canaries (for dpaudit: every population
example, with row 0 of the membership matrix) was included independently with probability ½; the auditor
guesses IN for the k₊ highest scores and OUT for the k₋ lowest (HIGHER score = MEMBER), with k₊, k₋ fixed
before any score is seen, and abstains on the rest. Under (ε, δ)-DP the number of correct guesses is
stochastically dominated by Binomial(k₊ + k₋, e^ε/(1 + e^ε)) up to a δ term (Theorem 3), which gives the
bound; the scores may use anything independent of the canaries' inclusion (e.g. shadow models trained on
independently drawn halves).

:func:`one_run_audit` evaluates a fixed set of estimators on the same guesses — by default this module's
:func:`one_run_epsilon` and the f-DP number :func:`dpaudit.privacy.fdp_one_run.one_run_fdp_epsilon`. The
estimators that are bounds for any (ε, δ)-DP mechanism share ``significance`` (Bonferroni, fixed in
advance) and the largest of them is reported; an estimator that needs an extra assumption (f-DP: a
Gaussian trade-off curve, which randomised response breaks) runs at ``significance`` as an estimate, is
kept in ``components``, and is never the reported bound.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import scipy.special
import scipy.stats

from dpaudit._validation import check_int, check_mask, check_real
from dpaudit.errors import ConfigError, DataError
from dpaudit.privacy import empirical as _emp
from dpaudit.privacy._search import bisect
from dpaudit.privacy.empirical import EmpiricalEpsilon, THEOREMS, check_delta, check_significance
from dpaudit.privacy.fdp_one_run import one_run_fdp_epsilon
from dpaudit.registry import Registry

__all__ = ["DEFAULT_ESTIMATORS", "ONE_RUN_ESTIMATORS", "count_correct", "one_run_audit", "one_run_epsilon"]


def _p_value(eps: float, *, v: int, r: int, m: int, delta: float) -> float:
    """Upper bound on P[≥ v correct of r guesses] under (ε, δ)-DP (2305.08846v1, Theorem 3).

    With p = e^ε/(1 + e^ε): ``β = P[Binom(r, p) ≥ v]``, ``α = max_{1≤i≤v} P[v − i ≤ Binom(r, p) < v] / i``
    and the p-value is ``min(1, β + α·2m·δ)``; for δ = 0 it is β.
    """
    p = float(scipy.special.expit(eps))
    beta = float(scipy.stats.binom.sf(v - 1, r, p))
    if delta == 0.0 or v == 0:
        return beta
    i = np.arange(1, v + 1)
    window = scipy.stats.binom.sf(v - i - 1, r, p) - beta  # P[v − i ≤ B < v]
    return min(1.0, beta + float(np.max(window / i)) * 2.0 * m * delta)


def one_run_epsilon(
    *,
    num_correct: int,
    num_guesses: int,
    num_canaries: int,
    delta: float,
    significance: float,
    tol: float = 1e-4,
) -> EmpiricalEpsilon:
    """ε lower bound of a one-run audit (arXiv 2305.08846v1, Theorem 3), any (ε, δ)-DP mechanism.

    The largest ε (nats) whose p-value ``min(1, β + α·2m·δ)`` (see :func:`_p_value`) is ≤
    ``significance``, found by bisection to ``tol`` and rounded down (pessimistic). 0.0 if even ε = 0
    cannot be rejected; ``saturated=True`` at :data:`dpaudit.privacy.empirical.EPSILON_BRACKET_MAX`.

    Args:
        num_correct: v, correct guesses, 0 ≤ v ≤ r.
        num_guesses: r, guesses made, 0 ≤ r ≤ m.
        num_canaries: m ≥ 1, canaries randomised (guessed or not).
        delta: δ in [0, 1).
        significance: in (0, 1).
        tol: absolute tolerance on ε (nats), > 0.

    Returns:
        :class:`EmpiricalEpsilon` with ``method="one_run"``, ``experiment="one_run"``; inconclusive when
        no guess was made.
    """
    m = check_int("num_canaries", num_canaries, 1)
    r = check_int("num_guesses", num_guesses, 0, m)
    v = check_int("num_correct", num_correct, 0, r)
    d, sig = check_delta(delta), check_significance(significance)
    tol = check_real("tol", tol, 0.0, math.inf, closed="neither")
    base = dict(significance=sig, delta=d, method="one_run", strategy="counts", num_guesses=r,
                num_correct=v, theorem=THEOREMS["one_run"], experiment="one_run")
    if r == 0:
        return EmpiricalEpsilon(epsilon_lb=0.0, status="inconclusive", reason="no guesses were made",
                                **base)

    def rejected(eps: float) -> bool:
        return _p_value(eps, v=v, r=r, m=m, delta=d) <= sig

    top = _emp.EPSILON_BRACKET_MAX
    if not rejected(0.0):
        return EmpiricalEpsilon(epsilon_lb=0.0, **base)
    if rejected(top):
        return EmpiricalEpsilon(epsilon_lb=top, saturated=True, **base)
    lo, _ = bisect(lambda eps: not rejected(eps), 0.0, top, tol=tol)  # the p-value increases with ε
    return EmpiricalEpsilon(epsilon_lb=lo, **base)  # the rejected side: a valid lower bound


#: Registered one-run estimators: name → function of (num_correct, num_guesses, num_canaries, delta,
#: significance) returning an :class:`EmpiricalEpsilon`.
ONE_RUN_ESTIMATORS: Registry[str, Callable[..., EmpiricalEpsilon]] = Registry("estimator")
ONE_RUN_ESTIMATORS.register("one_run", one_run_epsilon)
ONE_RUN_ESTIMATORS.register("one_run_fdp", one_run_fdp_epsilon)

#: Estimators whose number needs an assumption beyond (ε, δ)-DP: reported as estimates, never the bound.
ESTIMATES = frozenset({"one_run_fdp"})

#: The estimators :func:`one_run_audit` runs unless told otherwise.
DEFAULT_ESTIMATORS: tuple[str, ...] = ("one_run", "one_run_fdp")


def count_correct(scores: np.ndarray, included: np.ndarray, *, num_guesses_in: int,
                  num_guesses_out: int) -> int:
    """Correct guesses of "IN for the k₊ highest, OUT for the k₋ lowest" (ties broken by position)."""
    order = np.argsort(-scores, kind="stable")
    k_out_start = scores.size - num_guesses_out
    return int(included[order[:num_guesses_in]].sum()) + int((~included[order[k_out_start:]]).sum())


def _scores(name: str, values: npt.ArrayLike) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D, got shape {arr.shape}.")
    return arr


def one_run_audit(
    scores: npt.ArrayLike,
    included: npt.ArrayLike,
    *,
    num_guesses_in: int,
    num_guesses_out: int,
    delta: float,
    significance: float,
    estimators: Sequence[str] = DEFAULT_ESTIMATORS,
) -> EmpiricalEpsilon:
    """One-run audit from canary scores (HIGHER = MEMBER; arXiv 2305.08846v1, Algorithm 1).

    Guesses IN for the ``num_guesses_in`` highest scores and OUT for the ``num_guesses_out`` lowest,
    counts correct guesses against ``included`` and runs each bound estimator in ``estimators`` at
    ``significance / (number of bound estimators)`` and each estimate (:data:`ESTIMATES`) at
    ``significance``. With one estimator its result is returned; with several, the largest bound
    (Bonferroni over the bounds, fixed in advance), with every estimator's result in ``components``. Valid only if each canary was included independently with probability ½ and the guess
    counts were fixed before the scores were seen.

    Args:
        scores: array-like of shape (m,), one score per canary.
        included: bool array-like of shape (m,), True for canaries that were trained on.
        num_guesses_in: k₊ ≥ 0, IN guesses.
        num_guesses_out: k₋ ≥ 0, OUT guesses; k₊ + k₋ ≤ m.
        delta: δ in [0, 1).
        significance: in (0, 1), for the returned bound.
        estimators: names in :data:`ONE_RUN_ESTIMATORS`, default=("one_run", "one_run_fdp").

    Returns:
        :class:`EmpiricalEpsilon` with ``strategy="top_bottom"``; inconclusive for NaN scores or no
        guesses (then ``method`` lists the estimators joined by "+").
    """
    s = _scores("scores", scores)
    inc = check_mask("included", included, s.shape, hint="scores and included must be 1-D of equal length")
    k_in = check_int("num_guesses_in", num_guesses_in, 0, s.size)
    k_out = check_int("num_guesses_out", num_guesses_out, 0, s.size - k_in)
    d, sig = check_delta(delta), check_significance(significance)
    names = _estimator_names(estimators)
    counts = dict(n_in=int(inc.sum()), n_out=int((~inc).sum()), strategy="top_bottom")
    if s.size == 0 or np.isnan(s).any():
        reason = "no canaries" if s.size == 0 else "scores contain NaN"
        theorem = THEOREMS[names[0]] if len(names) == 1 else THEOREMS["bonferroni"]
        return EmpiricalEpsilon(epsilon_lb=0.0, significance=sig, delta=d, method="+".join(names),
                                status="inconclusive", reason=reason, theorem=theorem,
                                experiment="one_run", **counts)
    correct = count_correct(s, inc, num_guesses_in=k_in, num_guesses_out=k_out)
    bounds = [n for n in names if n not in ESTIMATES]
    each = sig / max(1, len(bounds))
    results = [dataclasses.replace(
        ONE_RUN_ESTIMATORS[n](num_correct=correct, num_guesses=k_in + k_out, num_canaries=s.size,
                              delta=d, significance=each if n in bounds else sig), **counts) for n in names]
    return results[0] if len(results) == 1 else _largest_bound(results, sig)


def _estimator_names(estimators: Sequence[str]) -> tuple[str, ...]:
    names = tuple(estimators)
    unknown = [n for n in names if n not in ONE_RUN_ESTIMATORS]
    if not names or unknown or len(set(names)) != len(names):
        raise ConfigError(f"estimators must be distinct names from {sorted(ONE_RUN_ESTIMATORS)}, "
                          f"got estimators={names!r}.")
    return names


def _largest_bound(results: list[EmpiricalEpsilon], significance: float) -> EmpiricalEpsilon:
    """The largest ok bound (estimates never), stated at the shared ``significance``, with every result as
    a component."""
    candidates = [r for r in results if r.kind == "bound"] or results
    ok = [r for r in candidates if r.status == "ok"]
    best = max(ok, key=lambda r: r.epsilon_lb) if ok else candidates[0]
    return dataclasses.replace(best, significance=significance, components=tuple(r.to_dict() for r in results))
