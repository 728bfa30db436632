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
* ``epsilon_lb``: the ONE-RUN ε lower bound on the first target's scores over the population
  (:func:`attacks.canary.canary_audit`: guess IN for the k highest and OUT for the k lowest scores,
  k = ⌊guess_fraction · N / 2⌋ fixed from N before any score is seen; the one-run bound of arXiv 2305.08846
  at the full significance, with the f-DP number of arXiv 2410.22235 beside it in ``components`` as an
  estimate: it assumes a Gaussian trade-off curve, which an (ε, δ) claim does not promise). Its theorem needs
  the target's membership row to be i.i.d. Bernoulli(½) (row 0 of :func:`attacks.membership.make_membership`
  is) and the scores not to read it (the reference set excludes the target and its complement). The
  Clopper–Pearson bound over FPR/FNR is NOT used here: it assumes one observation per independent run,
  and the examples scored by one model are not independent runs.

If any target's metrics are undefined (one-class labels, NaN scores) the whole result is
``status="inconclusive"`` with the reason, and its numbers are None; it can never pass a gate.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from dpaudit._validation import check_int, check_real
from dpaudit.errors import ConfigError
from dpaudit.report_schema import AttackResult, RocCurve, TprAtFpr

from dpaudit.attacks.base import Attack
from dpaudit.attacks.canary import canary_audit
from dpaudit.attacks.metrics import DEFAULT_FPRS, AttackMetrics, compute_metrics, downsample_roc, score_histogram
from dpaudit.attacks.registry import create_attack
from dpaudit.attacks.signals import Signals

__all__ = ["evaluate_attack"]


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), (float(arr.std(ddof=1)) if arr.size > 1 else None)


def _one_run_bound(scores: np.ndarray, is_in: np.ndarray, *, delta: float, significance: float,
                   guess_fraction: float):
    """One-run ε lower bound of one target's scores; NaN scores or too few examples → inconclusive."""
    from dpaudit.privacy.empirical import EmpiricalEpsilon
    from dpaudit.privacy.one_run import DEFAULT_ESTIMATORS

    reason = None
    if is_in.all() or not is_in.any():  # not what an i.i.d. Bernoulli(½) row looks like
        reason = f"one-class membership ({int(is_in.sum())} of {is_in.size} members)"
    elif np.isnan(scores).any():
        reason = "scores contain NaN"
    elif int(guess_fraction * scores.size / 2 + 1e-9) < 1:
        reason = f"guess_fraction={guess_fraction:g} of N={scores.size} examples gives no guess"
    if reason is not None:
        return EmpiricalEpsilon(epsilon_lb=0.0, significance=significance, delta=delta,
                                method="+".join(DEFAULT_ESTIMATORS), strategy="top_bottom", status="inconclusive",
                                reason=reason, n_in=int(is_in.sum()), n_out=int((~is_in).sum()),
                                experiment="one_run")
    return canary_audit(scores, is_in, delta=delta, significance=significance, guess_fraction=guess_fraction)


def evaluate_attack(name_or_attack: str | Attack, signals: Signals, membership: npt.ArrayLike, *,
                    targets: Sequence[int] = (0,), delta: float, significance: float = 0.05,
                    fprs: Sequence[float] = DEFAULT_FPRS, guess_fraction: float = 0.1) -> AttackResult:
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
        guess_fraction: fraction of the population the one-run bound guesses on, in (0, 1], split equally
            between IN and OUT guesses (fixed before the scores are seen).

    Returns:
        The frozen :class:`dpaudit.report_schema.AttackResult` (ε in nats; higher score = member).

    Raises:
        ConfigError: unknown attack name, empty/duplicate/out-of-range targets, bad δ/significance/
            guess_fraction.
        DataError / ConfigError: as raised by :meth:`Attack.score` for malformed inputs.
    """
    attack = create_attack(name_or_attack) if isinstance(name_or_attack, str) else name_or_attack
    if not isinstance(attack, Attack):
        raise TypeError(f"name_or_attack must be an attack name or an Attack, got {type(attack).__name__}.")
    if not isinstance(signals, Signals):
        raise TypeError(f"signals must be attacks.signals.Signals, got {type(signals).__name__}.")
    delta = check_real("delta", delta, 0.0, 1.0, closed="left")
    significance = check_real("significance", significance, 0.0, 1.0, closed="neither")
    guess_fraction = check_real("guess_fraction", guess_fraction, 0.0, 1.0, closed="right")
    membership = signals.check_membership(membership)
    m = signals.n_models
    targets = [check_int("target", t, 0, m - 1) for t in targets]
    if not targets or len(set(targets)) != len(targets):
        raise ConfigError(f"targets must be a non-empty list of distinct model indices, got {targets}.")

    per_target, first_scores = _score_targets(attack, signals, membership, targets, fprs)
    first = per_target[0]
    is_in = membership[targets[0]]
    eps = _one_run_bound(first_scores, is_in, delta=delta, significance=significance,
                         guess_fraction=guess_fraction)
    histogram = score_histogram(first_scores, is_in)
    common = dict(name=attack.name or type(attack).__name__, paper=attack.paper, target_model=targets[0], n_targets=len(targets),
                  n_members=first.n_members, n_nonmembers=first.n_nonmembers, epsilon_lb=eps.to_dict(),
                  histogram=histogram)
    return _aggregate(per_target, targets, common)


def _score_targets(attack: Attack, signals: Signals, membership: np.ndarray, targets: list[int],
                   fprs: Sequence[float]) -> tuple[list[AttackMetrics], np.ndarray]:
    """Metrics per target, each attacked with every model except itself and its complement as reference.

    Returns ``(metrics per target, the first target's scores)``.
    """
    per_target: list[AttackMetrics] = []
    first_scores = np.empty(0)
    for t in targets:
        row = membership[t]
        reference = np.array([r for r in range(signals.n_models) if r != t and not np.array_equal(membership[r], row)
                              and not np.array_equal(membership[r], ~row)], dtype=np.int64)
        scores = attack.score(signals, membership, target=t, reference=reference)
        if not per_target:
            first_scores = scores
        per_target.append(compute_metrics(scores, membership[t], fprs=fprs))
    return per_target, first_scores


def _aggregate(per_target: list[AttackMetrics], targets: list[int], common: dict) -> AttackResult:
    """Mean ± std over targets; inconclusive (no numbers) if any target's metrics are."""
    first = per_target[0]
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
