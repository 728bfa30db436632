"""Privacy audit in one training run (Steinke, Nasr, Jagielski 2023, arXiv 2305.08846 v1).

m canaries are each included in the target's training set independently with probability ½ (row 0 of
:func:`attacks.membership.make_membership`). The auditor guesses "IN" for the k₊ highest-scoring and
"OUT" for the k₋ lowest-scoring canaries and abstains on the rest; the number of correct guesses is
compared with what (ε, δ)-DP allows, giving an ε lower bound at confidence 1 − significance: the one-run
bound (the paper's binomial tail, valid for any (ε, δ)-DP mechanism). The f-DP one-run number with the
Gaussian trade-off (Mahloujifar, Melis, Chaudhuri 2024, arXiv 2410.22235 v1) is computed beside it as an
estimate (``components``): it lower-bounds ε only for Gaussian-shaped mechanisms, and ε-randomised
response, for one, makes it exceed the true ε. The guess counts must be fixed before
looking at outcomes, so here they depend only on m and ``guess_fraction``: k₊ = k₋ =
⌊guess_fraction · m / 2⌋ (one rule, no search over k). Scores must come from an attack that did not read
the target's membership (every registered attack satisfies this).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from dpaudit._validation import check_mask, check_real
from dpaudit.errors import DataError

__all__ = ["canary_audit", "guess_counts"]


def guess_counts(n_canaries: int, guess_fraction: float) -> int:
    """k₊ = k₋ = ⌊guess_fraction · m / 2⌋, fixed in advance from m and the fraction alone.

    Raises:
        ConfigError / TypeError: ``guess_fraction`` outside (0, 1].
        DataError: fewer than one guess per side; the message names the m needed.
    """
    frac = check_real("guess_fraction", guess_fraction, 0.0, 1.0, closed="right")
    k = int(math.floor(frac * n_canaries / 2 + 1e-9))
    if k < 1:
        need = int(math.ceil(2 / frac - 1e-9))
        raise DataError(f"too few canaries for the one-run audit: guess_fraction={frac:g} of "
                        f"m={n_canaries} gives no guess; use m ≥ {need} canaries or a larger guess_fraction.")
    return k


def canary_audit(target_scores: npt.ArrayLike, included: npt.ArrayLike, *, delta: float,
                 significance: float, guess_fraction: float = 0.1):
    """One-run ε lower bound from the target's canary scores (higher = member).

    Args:
        target_scores: array-like of shape (m,), attack scores of the target on the canaries.
        included: bool array of shape (m,), True where the canary was in the training set.
        delta: δ (probability) in [0, 1).
        significance: probability the bound is wrong (one minus confidence), in (0, 1).
        guess_fraction: fraction of canaries guessed on, split equally between IN and OUT guesses.

    Returns:
        ``dpaudit.privacy.empirical.EmpiricalEpsilon`` (ε in nats, ``experiment="one_run"``), from
        ``dpaudit.privacy.one_run.one_run_audit`` with both estimators in ``components``.

    Raises:
        DataError: shapes disagree, ``included`` is not boolean, NaN scores, or too few canaries.
        ConfigError / TypeError: out-of-range options.
    """
    from dpaudit.privacy.one_run import one_run_audit

    scores = np.asarray(target_scores, dtype=np.float64)
    if scores.ndim != 1:
        raise DataError(f"target_scores must be 1-D (one score per canary), got shape={scores.shape}.")
    included = check_mask("included", included, scores.shape,
                          hint="target_scores and included must be 1-D of equal length")
    if np.isnan(scores).any():
        raise DataError(f"{int(np.isnan(scores).sum())} canary scores are NaN; the one-run audit needs "
                        "a score for every canary.")
    k = guess_counts(scores.size, guess_fraction)
    return one_run_audit(scores, included, num_guesses_in=k, num_guesses_out=k, delta=delta,
                         significance=significance)
