"""Likelihood Ratio Attack, online and offline (Carlini et al. 2022, arXiv 2112.03570 v2, Algorithm 1).

Signal: the scaled confidence φ = log p_y − log(1 − p_y) (:attr:`Signals.phi`), which the paper finds
close to Gaussian across retrainings. For each example x, Gaussians are fitted to the reference models'
φ values with x IN their training set (μ_in(x), σ²_in(x)) and with x OUT (μ_out(x), σ²_out(x)).

* Online (Algorithm 1, last line): ``score(x) = log N(φ_t; μ_in, σ²_in) − log N(φ_t; μ_out, σ²_out)``,
  the log likelihood ratio Λ of the target's observation φ_t.
* Offline (one-sided test against OUT only): ``score(x) = −log Pr[Z > φ_t]``, Z ~ N(μ_out, σ²_out),
  i.e. −log of the one-sided p-value; a monotone transform of the paper's ``1 − Pr[Z > φ_t]`` that
  keeps resolution in the member tail.

Higher score = member.

Variance: per example (``fix_variance=False``, unbiased, ddof=1) or global (``fix_variance=True``).
The global variance is the pooled *within-example* variance of each side, Σ_x Σ_r (φ − μ(x))² /
Σ_x (n(x) − 1); it does not absorb the spread of μ(x) across examples. The paper notes a global
variance works better with few shadow models; ``fix_variance=None`` (default) picks global when the
reference set has fewer than 64 models.

Fallbacks (documented, never silent NaN): an example with fewer than 2 IN (OUT) references uses the
global IN (OUT) variance; with no IN reference, μ_in(x) = μ_out(x) + Δ, and with no OUT reference
μ_out(x) = μ_in(x) − Δ, where Δ is the mean of μ_in − μ_out over examples that have both (0 when none
has, for offline). An example with no reference at all gets the global means.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from dpaudit.errors import DataError

from dpaudit.attacks.base import Attack
from dpaudit.attacks.registry import register_attack
from dpaudit.attacks.signals import Signals

__all__ = ["LiraOnline", "LiraOffline", "fit_gaussians"]

#: With fewer reference models than this, ``fix_variance=None`` uses a global variance.
AUTO_GLOBAL_VARIANCE_BELOW = 64
_VAR_FLOOR = 1e-12


def _side_stats(phi: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Per-example count, mean, unbiased variance (NaN if count < 2) and the pooled variance (NaN if none)."""
    count = mask.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(mask, phi, 0.0).sum(axis=0) / count
        ss = np.where(mask, (phi - mean) ** 2, 0.0).sum(axis=0)
        var = np.where(count >= 2, ss / (count - 1), np.nan)
    dof = np.clip(count - 1, 0, None).sum()
    pooled = float(ss[count >= 2].sum() / dof) if dof > 0 else float("nan")
    return count, mean, var, pooled


def fit_gaussians(phi_ref: np.ndarray, in_ref: np.ndarray, *, fix_variance: bool,
                  need_in: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit per-example IN/OUT Gaussians to reference φ values, with the module's fallbacks.

    Args:
        phi_ref: float (R, N), φ of the reference models.
        in_ref: bool (R, N), True where the reference model trained on the example.
        fix_variance: use the pooled global variance of each side for every example.
        need_in: whether IN statistics are required (online); offline passes False.

    Returns:
        (mu_in, var_in, mu_out, var_out), each float64 (N,), all finite; IN arrays are NaN-free
        only when ``need_in``.

    Raises:
        DataError: no example has 2 references on a needed side (variance undefined), or online
            with no example that has both an IN and an OUT reference.
    """
    n_in, mu_in, var_in, pooled_in = _side_stats(phi_ref, in_ref)
    n_out, mu_out, var_out, pooled_out = _side_stats(phi_ref, ~in_ref)
    sides = [("OUT", pooled_out)] + ([("IN", pooled_in)] if need_in else [])
    for side, pooled in sides:
        if not np.isfinite(pooled):
            raise DataError(f"LiRA needs ≥2 {side} reference models for some example to estimate a "
                            "variance; train more shadow models (num_shadows ≥ 4).")
    both = (n_in > 0) & (n_out > 0)
    if need_in and not both.any():
        raise DataError("online LiRA needs examples with both IN and OUT reference models; use "
                        "lira_offline or train complementary shadow pairs.")
    shift = float(np.mean(mu_in[both] - mu_out[both])) if both.any() else 0.0
    all_phi = float(phi_ref.mean())
    mu_out = np.where(n_out > 0, mu_out, np.where(n_in > 0, mu_in - shift, all_phi - shift / 2))
    mu_in = np.where(n_in > 0, mu_in, mu_out + shift)
    if fix_variance:
        var_in = np.full_like(mu_in, pooled_in)
        var_out = np.full_like(mu_out, pooled_out)
    else:
        var_in = np.where(n_in >= 2, var_in, pooled_in)
        var_out = np.where(n_out >= 2, var_out, pooled_out)
    return mu_in, np.maximum(var_in, _VAR_FLOOR), mu_out, np.maximum(var_out, _VAR_FLOOR)


class _Lira(Attack):
    """Shared option handling for the two LiRA variants."""

    paper = "Carlini et al. 2022, arXiv 2112.03570"

    def __init__(self, *, fix_variance: bool | None = None) -> None:
        """Args:
            fix_variance: True: one pooled variance per side; False: per-example variance;
                None (default): global when fewer than 64 reference models.
        """
        if fix_variance is not None and not isinstance(fix_variance, bool):
            raise TypeError(f"fix_variance must be a bool or None, got fix_variance={fix_variance!r}.")
        self.fix_variance = fix_variance

    def _fix(self, n_reference: int) -> bool:
        if self.fix_variance is None:
            return n_reference < AUTO_GLOBAL_VARIANCE_BELOW
        return self.fix_variance


@register_attack("lira_online")
class LiraOnline(_Lira):
    """Online LiRA: log N(φ_t; μ_in, σ²_in) − log N(φ_t; μ_out, σ²_out); higher = member."""

    def _score(self, signals: Signals, ref_membership: np.ndarray, *, target: int,
               reference: np.ndarray) -> np.ndarray:
        phi = signals.phi
        mu_in, var_in, mu_out, var_out = fit_gaussians(
            phi[reference], ref_membership, fix_variance=self._fix(len(reference)))
        obs = phi[target]
        return (norm.logpdf(obs, mu_in, np.sqrt(var_in))
                - norm.logpdf(obs, mu_out, np.sqrt(var_out)))


@register_attack("lira_offline")
class LiraOffline(_Lira):
    """Offline LiRA: −log Pr[Z > φ_t], Z ~ N(μ_out, σ²_out); higher = member.

    Reads OUT references; IN references only enter through the documented fallback for an example
    that has no OUT reference.
    """

    def _score(self, signals: Signals, ref_membership: np.ndarray, *, target: int,
               reference: np.ndarray) -> np.ndarray:
        phi = signals.phi
        _, _, mu_out, var_out = fit_gaussians(
            phi[reference], ref_membership, fix_variance=self._fix(len(reference)), need_in=False)
        return -norm.logsf(phi[target], mu_out, np.sqrt(var_out))
