from __future__ import annotations

import itertools

import numpy as np
import pytest

from dpaudit.attacks.metrics import compute_metrics, downsample_roc, score_histogram
from dpaudit.errors import DataError


def _brute_auc(s, y):
    pos, neg = s[y], s[~y]
    wins = sum((p > q) + 0.5 * (p == q) for p, q in itertools.product(pos, neg))
    return wins / (pos.size * neg.size)


def _brute_rates(s, y):
    """(FPR, TPR) for every threshold 'predict IN iff score ≥ t', t over all scores and +inf."""
    out = []
    for t in np.append(np.unique(s), np.inf):
        pred = s >= t
        out.append((pred[~y].mean(), pred[y].mean()))
    return out


def _tied_case(seed, n=60):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.5
    y[:2] = [True, False]
    s = rng.integers(0, 6, size=n) + 1.5 * y  # many ties
    return s.astype(float), y


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_pairwise_count(seed):
    s, y = _tied_case(seed)
    assert compute_metrics(s, y).auc == pytest.approx(_brute_auc(s, y), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_balanced_accuracy_and_advantage_brute_force(seed):
    s, y = _tied_case(seed, n=25)
    rates = _brute_rates(s, y)
    res = compute_metrics(s, y)
    assert res.balanced_accuracy == pytest.approx(max((tpr + 1 - fpr) / 2 for fpr, tpr in rates))
    assert res.advantage == pytest.approx(max(tpr - fpr for fpr, tpr in rates))


@pytest.mark.parametrize("seed", range(5))
def test_tpr_at_fpr_is_conservative(seed):
    s, y = _tied_case(seed, n=400)
    rates = _brute_rates(s, y)
    fprs = (0.01, 0.05, 0.1, 0.3)
    res = compute_metrics(s, y, fprs=fprs)
    for point in res.tpr_at_fpr:
        allowed = [tpr for fpr, tpr in rates if fpr <= point.fpr]
        assert point.resolvable
        assert point.tpr == pytest.approx(max(allowed))  # best TPR among thresholds with FPR ≤ f


def test_tpr_at_fpr_never_takes_a_point_beyond_f():
    # two of ten non-members sit above every member: any threshold catching a member has FPR ≥ 0.2
    s = np.array([11.0, 10.0, 5.0, 4.0, 3.0] + [0.0] * 8)
    y = np.array([False, False, True, True, True] + [False] * 8)
    res = compute_metrics(s, y, fprs=(0.1, 0.19, 0.2, 1.0))
    assert [p.tpr for p in res.tpr_at_fpr] == [0.0, 0.0, 1.0, 1.0]


def test_unresolvable_fprs_are_marked():
    rng = np.random.default_rng(0)
    y = np.zeros(150, dtype=bool)
    y[:100] = True  # 50 non-members: 1/f ≤ 50 only for f ≥ 0.02
    res = compute_metrics(rng.normal(size=150), y)
    by_fpr = {p.fpr: p for p in res.tpr_at_fpr}
    assert not by_fpr[1e-3].resolvable and by_fpr[1e-3].tpr is None
    assert not by_fpr[1e-2].resolvable and by_fpr[1e-2].tpr is None
    assert by_fpr[1e-1].resolvable and by_fpr[1e-1].tpr is not None
    assert res.status == "ok"


@pytest.mark.parametrize("member", [True, False])
def test_one_class_is_inconclusive(member):
    res = compute_metrics(np.arange(5.0), np.full(5, member))
    assert res.status == "inconclusive" and "one-class" in res.reason
    assert res.auc is None and res.balanced_accuracy is None and res.advantage is None
    assert all(p.tpr is None for p in res.tpr_at_fpr)


def test_nan_scores_are_inconclusive_and_inf_scores_are_ranked():
    y = np.array([True, False, True, False])
    res = compute_metrics(np.array([1.0, np.nan, 2.0, 0.0]), y)
    assert res.status == "inconclusive" and "NaN" in res.reason and res.auc is None
    res = compute_metrics(np.array([np.inf, -np.inf, 2.0, 0.0]), y)
    assert res.status == "ok" and res.auc == 1.0


def test_metric_input_errors():
    with pytest.raises(DataError, match="is_member must be a bool array"):
        compute_metrics([0.0, 1.0], [0, 1])
    with pytest.raises(DataError, match="1-D of equal length"):
        compute_metrics([0.0, 1.0, 2.0], np.array([True, False]))


def test_downsampled_roc_keeps_order_endpoints_and_budget():
    rng = np.random.default_rng(0)
    y = rng.random(5000) < 0.5
    res = compute_metrics(rng.normal(size=5000) + y, y)
    roc = downsample_roc(res.fpr, res.tpr)
    assert 2 <= len(roc.fpr) <= 500 and len(roc.fpr) == len(roc.tpr)
    assert np.all(np.diff(roc.fpr) >= 0) and np.all(np.diff(roc.tpr) >= 0)
    assert (roc.fpr[0], roc.tpr[0]) == (0.0, 0.0) and (roc.fpr[-1], roc.tpr[-1]) == (1.0, 1.0)
    small = downsample_roc([0.0, 0.5, 1.0], [0.0, 0.7, 1.0])
    assert small.fpr == (0.0, 0.5, 1.0)


def test_histogram_counts_every_finite_score():
    s = np.array([0.0, 1.0, 2.0, 3.0, np.inf])
    y = np.array([True, False, True, False, True])
    h = score_histogram(s, y, bins=3)
    assert len(h.bin_edges) == 4
    assert sum(h.in_counts) == 2 and sum(h.out_counts) == 2
