"""Robust Membership Inference Attack, RMIA (Zarifzadeh et al. 2024, arXiv 2312.03262 v3, Sec. 3).

Pairwise likelihood ratio of the target θ between the challenge x and a population example z:

    LR_θ(x, z) = [Pr(x | θ) / Pr(x)] · [Pr(z) / Pr(z | θ)],

with Pr(x | θ) = p_y(x; θ), the target's softmax probability of the true label, and Pr(x) the average
of Pr(x | θ') over reference models θ'. The score is the fraction of population examples z that x
dominates:

    score(x) = Pr_z[ LR_θ(x, z) ≥ γ ],  γ = 1 by default.           (higher = member)

Pr(x) per example: with IN and OUT references, ½(mean_IN + mean_OUT) (the balanced average the paper's
online attack gets from half-IN reference sets); with OUT references only (or ``offline=True``), the
paper's offline approximation Pr(x) = ½[(1 + a)·mean_OUT + (1 − a)], which models Pr_IN(x) as the linear
function a·Pr_OUT(x) + (1 − a); with IN references only, mean_IN. All in log space.

Population z: by default every population example (``n_z=None``), otherwise a seeded uniform subset
of ``n_z`` examples; x is never compared with itself. The paper draws z from the population of
non-members; here z is drawn independently of the target's membership, because choosing z by the
target's row would let the score read the membership it is graded on. For a fixed target, score(x) is
the empirical CDF of ratio(z) = Pr(z|θ)/Pr(z) at ratio(x)/γ, a monotone function of ratio(x), so this
choice affects only resolution and ties, not the ROC ordering. Counting uses a sorted array and binary
search: memory O(N + n_z), time O((N + n_z) log n_z).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from dpaudit._validation import check_int, check_real
from dpaudit.errors import ConfigError

from dpaudit.attacks.base import Attack
from dpaudit.attacks.registry import register_attack
from dpaudit.attacks.signals import Signals

__all__ = ["Rmia", "log_reference_probability"]


def _log_mean(log_p: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log of the masked mean of exp(log_p) over axis 0, and the counts (−inf where count is 0)."""
    count = mask.sum(axis=0)
    with np.errstate(divide="ignore"):
        lse = logsumexp(np.where(mask, log_p, -np.inf), axis=0)
        return lse - np.log(np.maximum(count, 1)), count


def log_reference_probability(log_p_ref: np.ndarray, in_ref: np.ndarray, *, offline: bool,
                              a: float) -> np.ndarray:
    """log Pr(x) per example from the reference models' log p_y, as described in the module docstring.

    Args:
        log_p_ref: float (R, N), reference models' log-probability of the true label.
        in_ref: bool (R, N), True where the reference model trained on the example.
        offline: use OUT references only (the a-interpolation) for every example.
        a: offline slope a in [0, 1].

    Returns:
        float64 (N,) log Pr(x); −inf only if an example has no usable reference and a = 1.
    """
    lm_in, n_in = _log_mean(log_p_ref, in_ref)
    lm_out, n_out = _log_mean(log_p_ref, ~in_ref)
    with np.errstate(divide="ignore"):
        log_offline = math.log(0.5) + np.logaddexp(math.log1p(a) + lm_out, np.log(1.0 - a))
    online = np.logaddexp(lm_in, lm_out) - math.log(2.0)
    if offline:
        return np.where(n_out > 0, log_offline, lm_in)
    return np.where((n_in > 0) & (n_out > 0), online, np.where(n_out > 0, log_offline, lm_in))


@register_attack("rmia")
class Rmia(Attack):
    """RMIA score: fraction of population z with LR_θ(x, z) ≥ γ; higher = member."""

    paper = "Zarifzadeh et al. 2024, arXiv 2312.03262"

    def __init__(self, *, offline: bool = False, offline_a: float = 0.3, gamma: float = 1.0,
                 n_z: int | None = None, seed: int = 0) -> None:
        """Args:
            offline: estimate Pr(x) from OUT references only, with the a-interpolation.
            offline_a: the offline slope a in [0, 1] (default 0.3; the paper tunes a on reference
                models; it is used only where Pr(x) comes from OUT references alone).
            gamma: threshold γ > 0 on the pairwise likelihood ratio (default 1).
            n_z: number of population examples z to compare against (≥ 2), or None for all.
            seed: seed of the z subsample (recorded; unused when ``n_z`` is None).

        Raises:
            TypeError: wrong types. ConfigError: values out of range.
        """
        if not isinstance(offline, bool):
            raise TypeError(f"offline must be a bool, got offline={offline!r}.")
        self.offline = offline
        self.offline_a = check_real("offline_a", offline_a, 0.0, 1.0)
        self.gamma = check_real("gamma", gamma, 0.0, math.inf, closed="neither")
        self.n_z = None if n_z is None else check_int("n_z", n_z, 2)
        self.seed = check_int("seed", seed, 0)

    def _score(self, signals: Signals, ref_membership: np.ndarray, *, target: int,
               reference: np.ndarray) -> np.ndarray:
        n = signals.n_examples
        log_p = signals.log_prob_true
        log_px = log_reference_probability(log_p[reference], ref_membership, offline=self.offline,
                                           a=self.offline_a)
        # log[Pr(x|θ)/Pr(x)]; a −inf Pr(x) (a = 1, no reference) would give +inf: cap at a huge finite value.
        log_ratio = np.nan_to_num(log_p[target] - log_px, nan=0.0, posinf=1e300, neginf=-1e300)
        if self.n_z is None or self.n_z >= n:
            z_idx = np.arange(n)
        else:
            z_idx = np.sort(np.random.default_rng(self.seed).choice(n, size=self.n_z, replace=False))
        if z_idx.size < 2:
            raise ConfigError(f"rmia needs ≥ 2 population examples to compare against, got N={n}.")
        z_sorted = np.sort(log_ratio[z_idx])
        # LR(x, z) ≥ γ  ⇔  log_ratio(z) ≤ log_ratio(x) − log γ
        counts = np.searchsorted(z_sorted, log_ratio - math.log(self.gamma), side="right").astype(np.float64)
        denom = np.full(n, float(z_idx.size))
        in_z = np.zeros(n, dtype=bool)
        in_z[z_idx] = True
        if self.gamma <= 1.0:  # x itself satisfies LR(x, x) = 1 ≥ γ and was counted: remove it
            counts[in_z] -= 1.0
        denom[in_z] -= 1.0
        return counts / denom
