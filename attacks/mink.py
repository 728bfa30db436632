"""Min-K% Prob and Min-K%++ (token-level, reference-free).

* ``min_k`` (Shi et al. 2024, arXiv 2310.16789v3, §3): the mean of the ``k`` fraction of a text's target tokens
  with the lowest ``log p(x_t | x_<t)``; a member has few very unlikely tokens.
* ``min_k_pp`` (Zhang et al. 2025, arXiv 2404.02936v3, Eq. 2): the same over the standardised scores
  ``(log p(x_t | x_<t) − μ_t) / σ_t``, with μ_t, σ_t the mean and standard deviation of ``log p(v | x_<t)``
  under ``v ~ p(· | x_<t)`` — a member sits near a local maximum of the likelihood.

``k`` (default 0.2): the lowest ``max(1, round(k · n))`` of a text's n target tokens; a text with none scores 0.
"""

from __future__ import annotations

import numpy as np

from dpaudit._validation import check_real
from dpaudit.attacks.lm_signals import LMAttack, LMSignals, register_lm_attack

__all__ = ["MinK", "MinKPlusPlus", "lowest_fraction_mean"]

_SIGMA_FLOOR = 1e-6


def lowest_fraction_mean(values: np.ndarray, weight: np.ndarray, k: float) -> np.ndarray:
    """(N,) mean of the lowest ``max(1, round(k·n_i))`` of ``values[i]`` where ``weight[i]`` (N, T); 0 if n_i = 0."""
    v = np.where(weight, values, np.inf)
    ordered = np.sort(v, axis=1)
    n = weight.sum(1)
    take = np.where(n > 0, np.maximum(1, np.round(k * n)).astype(np.int64), 0)
    keep = np.arange(v.shape[1])[None, :] < take[:, None]
    return np.where(keep, ordered, 0.0).sum(1) / np.maximum(take, 1)


class _MinKBase(LMAttack):
    def __init__(self, *, k: float = 0.2) -> None:
        self.k = check_real("k", k, 0.0, 1.0, closed="right")


@register_lm_attack("min_k")
class MinK(_MinKBase):
    """Mean of the lowest k% token log-probabilities."""

    paper = "Shi et al. 2024, arXiv 2310.16789"

    def _score(self, signals: LMSignals, ref_membership, *, target: int, reference) -> np.ndarray:
        return lowest_fraction_mean(signals.logprob[target], signals.weight, self.k)


@register_lm_attack("min_k_pp")
class MinKPlusPlus(_MinKBase):
    """Mean of the lowest k% standardised token log-probabilities (log p − μ) / σ."""

    paper = "Zhang et al. 2025, arXiv 2404.02936"

    def _score(self, signals: LMSignals, ref_membership, *, target: int, reference) -> np.ndarray:
        z = (signals.logprob[target] - signals.mu[target]) / np.maximum(signals.sigma[target], _SIGMA_FLOOR)
        return lowest_fraction_mean(z, signals.weight, self.k)
