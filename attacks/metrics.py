"""Attack metrics from scores (higher = member) and true membership, built on ``sklearn.metrics``.

* ROC: ``sklearn.metrics.roc_curve`` (ties between scores collapse to one threshold).
* AUC: ``roc_auc_score`` = Pr[s_in > s_out] + ½ Pr[s_in = s_out] (Mann–Whitney).
* Advantage: max over thresholds of TPR − FPR (Yeom et al. 2018, arXiv 1709.01604 v5, membership
  advantage maximised over thresholds); ≥ 0 because the ROC contains (0, 0).
* Balanced accuracy: max over thresholds of (TPR + 1 − FPR)/2 = (1 + advantage)/2.
* TPR at FPR f: the largest TPR over ROC points with FPR ≤ f (never a threshold whose FPR exceeds f;
  errs low). With N_out non-members FPR moves in steps of 1/N_out, so f is ``resolvable`` only if
  N_out ≥ ⌈1/f⌉; otherwise ``tpr=None``.

Undefined inputs (one class only, or a NaN score) give ``status="inconclusive"`` and ``None`` metrics,
never NaN. ±inf scores are allowed (they are ranked; ROC depends on the order only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score, roc_curve

from dpaudit._validation import check_int, check_mask, check_real
from dpaudit.errors import DataError
from dpaudit.report_schema import RocCurve, ScoreHistogram, TprAtFpr

from dpaudit.attacks.membership import required_nonmembers

__all__ = ["AttackMetrics", "DEFAULT_FPRS", "compute_metrics", "downsample_roc", "score_histogram"]

DEFAULT_FPRS: tuple[float, ...] = (1e-3, 1e-2, 1e-1)


@dataclasses.dataclass(frozen=True, eq=False)
class AttackMetrics:
    """Metrics of one attack on one target model.

    Attributes:
        status: ``"ok"`` or ``"inconclusive"``; reason: why inconclusive, else None.
        n_members, n_nonmembers: counts of IN / OUT examples.
        auc, balanced_accuracy, advantage: probabilities, or None when inconclusive.
        tpr_at_fpr: one :class:`TprAtFpr` per requested FPR (``tpr_std`` None).
        fpr, tpr: the full ROC (float64, non-decreasing in fpr; empty when inconclusive).
    """

    status: str
    reason: str | None
    n_members: int
    n_nonmembers: int
    auc: float | None
    balanced_accuracy: float | None
    advantage: float | None
    tpr_at_fpr: tuple[TprAtFpr, ...]
    fpr: np.ndarray
    tpr: np.ndarray


def _check_pair(scores: npt.ArrayLike, is_member: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise DataError(f"scores must be 1-D (one score per example), got shape={s.shape}.")
    y = check_mask("is_member", is_member, s.shape, hint="scores and is_member must be 1-D of equal length")
    return s, y


def _tpr_at(fpr: np.ndarray, tpr: np.ndarray, f: float) -> float:
    """Largest TPR over ROC points with FPR ≤ f (the ROC always holds (0, 0))."""
    return float(tpr[fpr <= f + 1e-12].max())


def compute_metrics(scores: npt.ArrayLike, is_member: npt.ArrayLike, *,
                    fprs: Sequence[float] = DEFAULT_FPRS) -> AttackMetrics:
    """Compute ROC, AUC, balanced accuracy, advantage and TPR at each FPR.

    Args:
        scores: array-like of shape (N,); higher = member.
        is_member: bool array of shape (N,), the true membership in the target.
        fprs: FPRs in (0, 1] at which to report the TPR.

    Returns:
        An :class:`AttackMetrics`; ``status="inconclusive"`` (metrics None) for one-class labels
        or NaN scores.

    Raises:
        DataError: shapes disagree or ``is_member`` is not boolean.
        ConfigError: an FPR outside (0, 1].
    """
    s, y = _check_pair(scores, is_member)
    fprs = tuple(check_real("fpr", f, 0.0, 1.0, closed="right") for f in fprs)
    n_in, n_out = int(y.sum()), int((~y).sum())
    empty = np.empty(0)

    def inconclusive(reason: str) -> AttackMetrics:
        points = tuple(TprAtFpr(fpr=f, tpr=None, tpr_std=None, resolvable=n_out >= required_nonmembers(f))
                       for f in fprs)
        return AttackMetrics("inconclusive", reason, n_in, n_out, None, None, None, points, empty, empty)

    if n_in == 0 or n_out == 0:
        return inconclusive(f"one-class labels: {n_in} members and {n_out} non-members; the metrics "
                            "need both.")
    if np.isnan(s).any():
        return inconclusive(f"{int(np.isnan(s).sum())} attack scores are NaN.")
    if not np.isfinite(s).all():
        s = rankdata(s)  # same order and ties; sklearn rejects ±inf
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    auc = float(roc_auc_score(y, s))
    advantage = float(np.max(tpr - fpr))
    points = []
    for f in fprs:
        ok = n_out >= required_nonmembers(f)
        points.append(TprAtFpr(fpr=f, tpr=_tpr_at(fpr, tpr, f) if ok else None, tpr_std=None, resolvable=ok))
    return AttackMetrics("ok", None, n_in, n_out, auc, 0.5 * (1.0 + advantage), advantage, tuple(points),
                         fpr, tpr)


def downsample_roc(fpr: npt.ArrayLike, tpr: npt.ArrayLike, *, max_points: int = 500) -> RocCurve:
    """Keep at most ``max_points`` ROC points for plotting, dense at low FPR (log-log plots).

    Half the budget is spread geometrically over the point index, half linearly; the first and last
    points are always kept. Order (non-decreasing FPR) is preserved.
    """
    fpr, tpr = np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)
    max_points = check_int("max_points", max_points, 2)
    n = fpr.size
    if n <= max_points:
        keep = np.arange(n)
    else:
        keep = np.unique(np.concatenate([
            np.geomspace(1, n, max_points // 2).astype(np.int64) - 1,
            np.linspace(0, n - 1, max_points // 2).astype(np.int64), [0, n - 1]]))
        while keep.size > max_points:  # drop interior points evenly until within budget
            keep = np.unique(np.concatenate([keep[:-1:2], [n - 1]]))
    return RocCurve(fpr=tuple(float(v) for v in fpr[keep]), tpr=tuple(float(v) for v in tpr[keep]))


def score_histogram(scores: npt.ArrayLike, is_member: npt.ArrayLike, *, bins: int = 50) -> ScoreHistogram:
    """IN and OUT counts over common bins spanning the finite scores (non-finite scores are skipped)."""
    s, y = _check_pair(scores, is_member)
    bins = check_int("bins", bins, 1)
    finite = np.isfinite(s)
    if not finite.any():
        return ScoreHistogram(bin_edges=(), in_counts=(), out_counts=())
    edges = np.histogram_bin_edges(s[finite], bins=bins)
    in_counts, _ = np.histogram(s[finite & y], bins=edges)
    out_counts, _ = np.histogram(s[finite & ~y], bins=edges)
    return ScoreHistogram(bin_edges=tuple(float(e) for e in edges),
                          in_counts=tuple(int(c) for c in in_counts),
                          out_counts=tuple(int(c) for c in out_counts))
