"""Threshold strategies for the Clopper–Pearson ε lower bound (HIGHER score = MEMBER).

A Clopper–Pearson interval is valid only for a threshold fixed *before* the counts it bounds are seen, and
only for counts of independent trials: one observation per independently trained run (experiment
``"independent_runs"``), not many examples scored by one model (use :mod:`dpaudit.privacy.one_run`).
Each strategy below is a frozen dataclass saying how that is ensured; :func:`epsilon_lower_bound`
(in :mod:`dpaudit.privacy.lower_bounds`) dispatches on it with ``match``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.special

from dpaudit._validation import check_int, check_real
from dpaudit.errors import ConfigError
from dpaudit.privacy._clopper_pearson import cp_epsilon

__all__ = ["Bonferroni", "Explicit", "Split", "ThresholdStrategy", "best_threshold", "counts_at"]

#: Most candidate thresholds :func:`best_threshold` scans on the selection part.
MAX_SELECTION_CANDIDATES = 4096


class ThresholdStrategy:
    """Base class of the threshold strategies; ``name`` is what results record."""

    name = "base"


@dataclasses.dataclass(frozen=True)
class Split(ThresholdStrategy):
    """Choose the threshold on one random part of the data, evaluate it on the other.

    IN and OUT scores are each permuted with ``numpy.random.default_rng(seed)``; the first
    ⌊frac·n⌋ of each form the selection part, the rest the evaluation part. The threshold maximising the
    Clopper–Pearson ε on the selection part is evaluated on the evaluation part only, so it is independent
    of the counts it is evaluated on and the bound holds at the full ``significance``.

    Attributes:
        frac: fraction of each score set used for selection, in (0, 1).
        seed: seed of the split; None draws a fresh seed. Either way the seed used is recorded in
            the result.
    """

    frac: float = 0.5
    seed: int | None = 0
    name = "split"

    def __post_init__(self) -> None:
        check_real("frac", self.frac, 0.0, 1.0, closed="neither")
        if self.seed is not None:
            check_int("seed", self.seed, 0)


@dataclasses.dataclass(frozen=True)
class Bonferroni(ThresholdStrategy):
    """Evaluate up to ``max_thresholds`` candidate thresholds on all data, each at significance/k.

    The union bound over k = ``max_thresholds`` tests makes the best of them valid at ``significance``;
    k is fixed before the data are seen (fewer distinct candidates only make the correction conservative).

    Candidates, and why they are admissible: with ``thresholds`` given, those fixed values are used and the
    argument is exact. Otherwise the candidates are quantiles of the *pooled* scores (IN ∪ OUT), at
    probability levels spaced evenly on the probit scale between 1/(2N) and 1 − 1/(2N) (dense in the
    tails, where strong attacks separate). Pooled quantiles never look at the membership labels, so they
    cannot be tuned to which examples were members; they do depend on the score values, which couples each
    threshold weakly (each order statistic moves by one rank per example) to the counts. This is the
    standard practice (e.g. jax_privacy's auditor) and we accept it; pass ``thresholds`` for a strictly
    data-independent grid.

    Attributes:
        max_thresholds: k ≥ 1, the Bonferroni count.
        thresholds: optional fixed candidate thresholds (at most ``max_thresholds``).
    """

    max_thresholds: int = 100
    thresholds: tuple[float, ...] | None = None
    name = "bonferroni"

    def __post_init__(self) -> None:
        k = check_int("max_thresholds", self.max_thresholds, 1)
        if self.thresholds is not None and not 1 <= len(self.thresholds) <= k:
            raise ConfigError(f"thresholds must hold 1 to max_thresholds={k} values, "
                              f"got {len(self.thresholds)}.")

    def candidates(self, pooled: np.ndarray) -> np.ndarray:
        """Candidate thresholds (at most ``max_thresholds``) from the label-free pooled scores."""
        if self.thresholds is not None:
            return np.asarray(self.thresholds, dtype=np.float64)
        levels = _probit_levels(pooled.size, self.max_thresholds)
        return np.unique(np.quantile(pooled, levels, method="higher"))


@dataclasses.dataclass(frozen=True)
class Explicit(ThresholdStrategy):
    """A threshold fixed in advance (predict IN when score ≥ ``threshold``); evaluated on all data."""

    threshold: float
    name = "explicit"

    def __post_init__(self) -> None:
        check_real("threshold", self.threshold)


def _probit_levels(n: int, k: int) -> np.ndarray:
    """k probability levels evenly spaced on the probit scale in [1/(2n), 1 − 1/(2n)] (tail-dense)."""
    if k == 1:
        return np.array([0.5])
    z = scipy.special.ndtri(0.5 / n)
    return scipy.special.ndtr(np.linspace(z, -z, k))


def counts_at(in_scores: np.ndarray, out_scores: np.ndarray, threshold: float | np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tp, fn, fp, tn) of the rule "IN iff score ≥ threshold", for a scalar or array of thresholds."""
    t = np.asarray(threshold, dtype=np.float64)
    fn = np.searchsorted(np.sort(in_scores), t, side="left")
    tn = np.searchsorted(np.sort(out_scores), t, side="left")
    return in_scores.size - fn, fn, out_scores.size - tn, tn


def best_threshold(in_scores: np.ndarray, out_scores: np.ndarray, *, delta: float,
                   significance: float) -> float:
    """Threshold maximising the Clopper–Pearson ε on these scores (the *selection* part only).

    Candidates are the distinct pooled scores (thinned to :data:`MAX_SELECTION_CANDIDATES` quantiles
    when there are more). Ties go to the lowest threshold.
    """
    cands = np.unique(np.concatenate([in_scores, out_scores]))
    if cands.size > MAX_SELECTION_CANDIDATES:
        cands = np.unique(np.quantile(cands, _probit_levels(cands.size, MAX_SELECTION_CANDIDATES),
                                      method="higher"))
    eps = cp_epsilon(*counts_at(in_scores, out_scores, cands), delta=delta, significance=significance)
    return float(cands[int(np.argmax(eps))])
