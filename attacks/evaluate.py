"""Run one attack against one or more targets (leave-one-out) and build its ``AttackResult``.

For each target t the reference set is every other model, so any model can play the target and one
training run yields many evaluations, except a model whose membership row equals t's row or its
complement: with complementary shadow pairs, the partner's row is ``~membership[t]``, so handing it
to the attack would hand over the target's membership. (Model 0, the designated target, has no
partner; its reference set is every other model.) Reported (``docs/audit-json.md``, attack entry):

* ``auc``, ``balanced_accuracy``, ``advantage`` and each ``tpr_at_fpr.tpr``: means over targets;
  ``*_std``: sample standard deviations (ddof=1) over targets, None with one target.
* A FPR is ``resolvable`` only if it is for every target (each has its own N_out).
* ``roc`` (≤ 500 points), ``histogram``, ``n_members``/``n_nonmembers``: the first target (the
  designated target, model 0 by default).
* ``epsilon_lb``: the empirical ε lower bound on the first target's IN/OUT scores, with the decision
  threshold chosen on a random half and evaluated on the other half
  (:func:`dpaudit.privacy.lower_bounds.epsilon_lower_bound` with ``Split(frac=0.5, seed=seed)``).

If any target's metrics are undefined (one-class labels, NaN scores) the whole result is
``status="inconclusive"`` with the reason, and its numbers are None; it can never pass a gate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from dpaudit._validation import check_int, check_real
from dpaudit.errors import ConfigError, DataError
from dpaudit.report_schema import AttackResult, RocCurve, TprAtFpr

from attacks.base import Attack
from attacks.metrics import DEFAULT_FPRS, AttackMetrics, compute_metrics, downsample_roc, score_histogram
from attacks.registry import create_attack
from attacks.signals import Signals

__all__ = ["evaluate_attack"]


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), (float(arr.std(ddof=1)) if arr.size > 1 else None)


def evaluate_attack(name_or_attack: str | Attack, signals: Signals, membership: npt.ArrayLike, *,
                    targets: Sequence[int] = (0,), delta: float, significance: float = 0.05,
                    fprs: Sequence[float] = DEFAULT_FPRS, seed: int = 0) -> AttackResult:
    """Evaluate an attack with leave-one-out references over ``targets``.

    Args:
        name_or_attack: a registered attack name (created with default options) or an instance.
        signals: logits of all M models on the N population examples.
        membership: bool (M, N) membership matrix.
        targets: distinct model indices to attack; the first one is the designated target whose ROC,
            histogram and ε lower bound are reported.
        delta: δ (probability) of the ε lower bound, in [0, 1).
        significance: probability that the ε lower bound is wrong (one minus confidence), in (0, 1).
        fprs: FPRs in (0, 1] at which TPR is reported.
        seed: seed of the threshold-selection split of the ε lower bound.

    Returns:
        The frozen :class:`dpaudit.report_schema.AttackResult` (ε in nats; higher score = member).

    Raises:
        ConfigError: unknown attack name, empty/duplicate/out-of-range targets, bad δ/significance.
        DataError / ConfigError: as raised by :meth:`Attack.score` for malformed inputs.
    """
    from dpaudit.privacy.lower_bounds import Split, epsilon_lower_bound

    attack = create_attack(name_or_attack) if isinstance(name_or_attack, str) else name_or_attack
    if not isinstance(attack, Attack):
        raise TypeError(f"name_or_attack must be an attack name or an Attack, got {type(attack).__name__}.")
    if not isinstance(signals, Signals):
        raise TypeError(f"signals must be attacks.signals.Signals, got {type(signals).__name__}.")
    delta = check_real("delta", delta, 0.0, 1.0, closed="left")
    significance = check_real("significance", significance, 0.0, 1.0, closed="neither")
    seed = check_int("seed", seed, 0)
    membership = np.asarray(membership)
    if membership.dtype != bool or membership.shape != (signals.n_models, signals.n_examples):
        raise DataError(f"membership must be a bool array of shape ({signals.n_models}, {signals.n_examples}), "
                        f"got dtype={membership.dtype}, shape={membership.shape}.")
    m = signals.n_models
    targets = [check_int("target", t, 0, m - 1) for t in targets]
    if not targets or len(set(targets)) != len(targets):
        raise ConfigError(f"targets must be a non-empty list of distinct model indices, got {targets}.")

    per_target: list[AttackMetrics] = []
    first_scores = np.empty(0)
    for t in targets:
        row = membership[t]
        reference = np.array([r for r in range(m) if r != t and not np.array_equal(membership[r], row)
                              and not np.array_equal(membership[r], ~row)], dtype=np.int64)
        scores = attack.score(signals, membership, target=t, reference=reference)
        if not per_target:
            first_scores = scores
        per_target.append(compute_metrics(scores, membership[t], fprs=fprs))

    first = per_target[0]
    is_in = membership[targets[0]]
    # NaN scores make the bound inconclusive (never a number); ±inf scores are valid thresholds.
    eps = epsilon_lower_bound(first_scores[is_in], first_scores[~is_in], delta=delta,
                              significance=significance, strategy=Split(frac=0.5, seed=seed))
    histogram = score_histogram(first_scores, is_in)
    common = dict(name=attack.name or type(attack).__name__, paper=attack.paper, target_model=targets[0], n_targets=len(targets),
                  n_members=first.n_members, n_nonmembers=first.n_nonmembers, epsilon_lb=eps.to_dict(),
                  histogram=histogram)

    bad = [(t, r) for t, r in zip(targets, per_target) if r.status != "ok"]
    if bad:
        t, r = bad[0]
        points = tuple(TprAtFpr(fpr=p.fpr, tpr=None, tpr_std=None,
                                resolvable=all(q.tpr_at_fpr[i].resolvable for q in per_target))
                       for i, p in enumerate(first.tpr_at_fpr))
        return AttackResult(status="inconclusive", reason=f"target model {t}: {r.reason}", auc=None,
                            auc_std=None, balanced_accuracy=None, balanced_accuracy_std=None,
                            advantage=None, tpr_at_fpr=points, roc=RocCurve(fpr=(), tpr=()), **common)

    auc, auc_std = _mean_std([r.auc for r in per_target])
    bacc, bacc_std = _mean_std([r.balanced_accuracy for r in per_target])
    advantage, _ = _mean_std([r.advantage for r in per_target])
    points = []
    for i, p in enumerate(first.tpr_at_fpr):
        column = [r.tpr_at_fpr[i] for r in per_target]
        if all(c.resolvable for c in column):
            mean, std = _mean_std([c.tpr for c in column])
            points.append(TprAtFpr(fpr=p.fpr, tpr=mean, tpr_std=std, resolvable=True))
        else:
            points.append(TprAtFpr(fpr=p.fpr, tpr=None, tpr_std=None, resolvable=False))
    return AttackResult(status="ok", reason=None, auc=auc, auc_std=auc_std, balanced_accuracy=bacc,
                        balanced_accuracy_std=bacc_std, advantage=advantage, tpr_at_fpr=tuple(points),
                        roc=downsample_roc(first.fpr, first.tpr), **common)
