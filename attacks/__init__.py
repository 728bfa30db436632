"""Membership-inference attacks on numpy signals, their metrics and the evaluation that feeds audit.json.

Importing this package registers every attack in :data:`attacks.registry.ATTACKS`: ``loss``,
``shadow``, ``lira_online``, ``lira_offline``, ``rmia``; and the causal-LM attacks in
:data:`attacks.lm_signals.LM_ATTACKS`: ``lm_loss``, ``zlib``, ``min_k``, ``min_k_pp``, ``ref_ratio``, ``lm_lira``,
``lm_rmia``. All attack scores follow one convention:
**higher score = member**.
"""

from __future__ import annotations

from dpaudit.attacks import lira, loss, rmia, shadow  # noqa: F401  (registration side effect of the package)
from dpaudit.attacks import lm_loss, lm_reference, mink  # noqa: F401  (the causal-LM attacks, LM_ATTACKS)
from dpaudit.attacks.base import Attack
from dpaudit.attacks.canary import canary_audit
from dpaudit.attacks.evaluate import evaluate_attack
from dpaudit.attacks.membership import check_population, make_membership, required_nonmembers, required_population
from dpaudit.attacks.metrics import AttackMetrics, compute_metrics
from dpaudit.attacks.registry import ATTACKS, create_attack, register_attack
from dpaudit.attacks.signals import Signals

__all__ = [
    "ATTACKS", "Attack", "AttackMetrics", "Signals", "canary_audit", "check_population",
    "compute_metrics", "create_attack", "evaluate_attack", "make_membership", "register_attack",
    "required_nonmembers", "required_population",
]
