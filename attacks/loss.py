"""LOSS threshold attack (Yeom et al. 2018, arXiv 1709.01604 v5: the membership adversary
that thresholds the loss).

Members tend to have lower loss, so the score is ``score(x) = −ℓ(θ_target; x)`` with
``ℓ = −log p_y`` the cross-entropy (nats); higher score = member. Yeom et al. threshold at the
expected training loss; the evaluation sweeps every threshold instead (ROC). Uses no reference models.
"""

from __future__ import annotations

import numpy as np

from dpaudit.attacks.base import Attack
from dpaudit.attacks.registry import register_attack
from dpaudit.attacks.signals import Signals

__all__ = ["LossAttack"]


@register_attack("loss")
class LossAttack(Attack):
    """Score = −loss of the target model on each example (higher = member). No options."""

    paper = "Yeom et al. 2018, arXiv 1709.01604"
    needs_reference = False  # the target's own loss: no reference model (the full fine-tuning reference)

    def _score(self, signals: Signals, ref_membership: np.ndarray, *, target: int,
               reference: np.ndarray) -> np.ndarray:
        return -signals.loss[target]
