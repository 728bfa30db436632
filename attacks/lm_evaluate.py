"""Evaluation of one LM attack into the ``AttackResult`` of ``audit.json`` (the classifier attacks' format).

Per target model t: scores from :meth:`LMAttack.score` with every other model as reference except those with
t's membership row or its complement (as :func:`attacks.evaluate.evaluate_attack`); AUC, balanced accuracy, TPR
at the FPRs (:func:`attacks.metrics.compute_metrics`); the one-run ε lower bound of the first target's scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dpaudit.attacks.evaluate import _aggregate, _one_run_bound
from dpaudit.attacks.lm_signals import LMAttack, LMSignals
from dpaudit.attacks.metrics import DEFAULT_FPRS, compute_metrics, score_histogram

__all__ = ["evaluate_lm_attack"]


def evaluate_lm_attack(attack: LMAttack, signals: LMSignals, membership: np.ndarray, *, targets: Sequence[int] = (0,),
                       delta: float, significance: float = 0.05, fprs: Sequence[float] = DEFAULT_FPRS,
                       guess_fraction: float = 0.1):
    """The :class:`~dpaudit.report_schema.AttackResult` of ``attack`` on ``targets`` (first: the reported one)."""
    membership = np.asarray(membership, dtype=bool)
    per_target, first_scores = [], None
    for t in targets:
        row = membership[t]
        reference = [r for r in range(signals.n_models) if r != t and not np.array_equal(membership[r], row)
                     and not np.array_equal(membership[r], ~row)]
        scores = attack.score(signals, membership, target=t, reference=reference if attack.needs_reference else [])
        first_scores = scores if first_scores is None else first_scores
        per_target.append(compute_metrics(scores, row, fprs=fprs))
    is_in = membership[targets[0]]
    eps = _one_run_bound(first_scores, is_in, delta=delta, significance=significance, guess_fraction=guess_fraction)
    first = per_target[0]
    common = dict(name=attack.name, paper=attack.paper, target_model=int(targets[0]), n_targets=len(targets),
                  n_members=first.n_members, n_nonmembers=first.n_nonmembers, epsilon_lb=eps.to_dict(),
                  histogram=score_histogram(first_scores, is_in))
    return _aggregate(per_target, list(targets), common)
