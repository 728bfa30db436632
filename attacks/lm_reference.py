"""LM attacks calibrated by other models: the base model, or the bank's shadows.

* ``ref_ratio`` (Carlini et al. 2021, arXiv 2012.07805v2, §5.1 "comparing to other neural language models";
  Watson et al. 2022, arXiv 2111.08440v2): ``score = ℓ_base − ℓ_target``, the drop of the mean NLL from the
  pre-fine-tuning model — a text the fine-tuning made much likelier was probably trained on.
* ``lm_lira`` (Carlini et al. 2022, arXiv 2112.03570v2, Algorithm 1, offline): the statistic ``s = −ℓ`` of the
  target against a Gaussian fitted to the OUT shadows' ``s`` of that text (:func:`attacks.lira.fit_gaussians`,
  its fallbacks), ``score = −log Pr[Z > s_target]``.
* ``lm_rmia`` (Zarifzadeh et al. 2024, arXiv 2312.03262v3): RMIA with ``Pr(x | θ) = exp(−ℓ_θ(x))``, the
  geometric-mean token probability, and Pr(x) from the shadows (:func:`attacks.rmia.log_reference_probability`);
  ``score`` = the fraction of other texts z with ``LR_θ(x, z) ≥ 1``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from dpaudit.errors import ConfigError
from dpaudit.attacks.lira import fit_gaussians
from dpaudit.attacks.lm_signals import LMAttack, LMSignals, register_lm_attack
from dpaudit.attacks.rmia import log_reference_probability

__all__ = ["ReferenceRatio", "LMLira", "LMRmia"]


@register_lm_attack("ref_ratio")
class ReferenceRatio(LMAttack):
    """ℓ_base − ℓ_target per text."""

    paper = "Carlini et al. 2021, arXiv 2012.07805"

    def _score(self, signals: LMSignals, ref_membership, *, target: int, reference) -> np.ndarray:
        if signals.base_nll is None:
            raise ConfigError("ref_ratio needs the base model's NLL (LMSignals.base_nll).")
        return np.asarray(signals.base_nll, dtype=np.float64) - signals.mean_nll()[target]


@register_lm_attack("lm_lira")
class LMLira(LMAttack):
    """Offline LiRA on −ℓ with a pooled OUT variance (few shadows)."""

    paper = "Carlini et al. 2022, arXiv 2112.03570"
    needs_reference = True
    min_references = 4  # complementary pairs: with 2 shadows every text has exactly one OUT shadow

    def _score(self, signals: LMSignals, ref_membership, *, target: int, reference) -> np.ndarray:
        s = -signals.mean_nll()
        _, _, mu_out, var_out = fit_gaussians(s[reference], ref_membership, fix_variance=True, need_in=False)
        return -norm.logsf(s[target], mu_out, np.sqrt(var_out))


@register_lm_attack("lm_rmia")
class LMRmia(LMAttack):
    """RMIA (γ = 1, offline a = 0.3 where only OUT shadows are known) on exp(−ℓ)."""

    paper = "Zarifzadeh et al. 2024, arXiv 2312.03262"
    needs_reference = True
    min_references = 2

    def _score(self, signals: LMSignals, ref_membership, *, target: int, reference) -> np.ndarray:
        log_p = -signals.mean_nll()
        log_ratio = log_p[target] - log_reference_probability(log_p[reference], ref_membership, offline=False, a=0.3)
        ordered = np.sort(log_ratio)
        counts = np.searchsorted(ordered, log_ratio, side="right") - 1.0  # x itself is not a z
        return counts / max(1, len(log_ratio) - 1)
