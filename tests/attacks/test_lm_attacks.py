"""The causal-LM attacks against hand computations: token statistics of a tiny banked Llama computed position by
position, and each score (loss, zlib, Min-K%, Min-K%++, reference ratio, LiRA, RMIA) recomputed by hand."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
from scipy.stats import norm

from dpaudit.attacks.lm_signals import LM_ATTACKS, LMSignals, zlib_bits
from dpaudit.trainers.lm_scores import token_stats

from tests.trainers._tiny_lm import banked, tiny_llama, token_data


def _signals(seed=0, m=3, n=5, t=6):
    rng = np.random.default_rng(seed)
    logprob = -rng.exponential(2.0, size=(m, n, t))
    mu = logprob - rng.uniform(0, 1, size=(m, n, t))
    sigma = rng.uniform(0.5, 2.0, size=(m, n, t))
    weight = np.ones((n, t), dtype=bool)
    weight[1, 4:] = False
    weight[3, :1] = False
    texts = [f"text number {i} " * (i + 1) for i in range(n)]
    return LMSignals(logprob * weight, mu, sigma, weight, zlib_bits(texts), rng.uniform(1, 4, size=n)), texts


def _mean_nll(s: LMSignals, m: int, i: int) -> float:
    vals = [s.logprob[m, i, t] for t in range(s.weight.shape[1]) if s.weight[i, t]]
    return -sum(vals) / len(vals)


def test_token_stats_match_a_position_by_position_computation():
    lm, data = banked(tiny_llama(), k=2, add=True), token_data()
    with torch.no_grad():
        next(iter(lm.bank.tables.values()))[1].add_(0.3)  # row 1 differs from row 0
    stats = token_stats(lm, data, models=[1], examples=np.array([2, 3]))
    for row, i in enumerate([2, 3]):
        x = torch.as_tensor(data.ids[i]).view(1, -1)
        logits = lm(x, torch.ones_like(x), torch.tensor([1]))[0]
        lm.bank.release()
        for t in range(1, len(data.ids[i])):
            logp = torch.log_softmax(logits[t - 1], -1).tolist()
            counted = t >= data.loss_from[i]
            assert stats["weight"][row, t - 1] == float(counted)
            if counted:
                mu = sum(math.exp(a) * a for a in logp)
                var = sum(math.exp(a) * a * a for a in logp) - mu * mu
                assert stats["logprob"][0, row, t - 1] == pytest.approx(logp[int(x[0, t])], abs=1e-5)
                assert stats["mu"][0, row, t - 1] == pytest.approx(mu, abs=1e-5)
                assert stats["sigma"][0, row, t - 1] == pytest.approx(math.sqrt(var), abs=1e-4)


def test_loss_zlib_and_reference_ratio_by_hand():
    s, texts = _signals()
    member = np.zeros((3, 5), dtype=bool)
    for i in range(5):
        nll = _mean_nll(s, 0, i)
        assert LM_ATTACKS.get("lm_loss")().score(s, member, target=0)[i] == pytest.approx(-nll)
        bits = 8 * len(zlib.compress(texts[i].encode()))
        assert LM_ATTACKS.get("zlib")().score(s, member, target=0)[i] == pytest.approx(-nll / bits)
        assert LM_ATTACKS.get("ref_ratio")().score(s, member, target=0)[i] == pytest.approx(s.base_nll[i] - nll)


@pytest.mark.parametrize("k", [0.2, 0.5, 1.0])
def test_min_k_and_min_k_plus_plus_by_hand(k):
    s, _ = _signals(1)
    member = np.zeros((3, 5), dtype=bool)
    got, got_pp = (LM_ATTACKS.get(n)(k=k).score(s, member, target=2) for n in ("min_k", "min_k_pp"))
    for i in range(5):
        ts = [t for t in range(6) if s.weight[i, t]]
        take = max(1, round(k * len(ts)))
        lows = sorted(s.logprob[2, i, t] for t in ts)[:take]
        z = sorted((s.logprob[2, i, t] - s.mu[2, i, t]) / s.sigma[2, i, t] for t in ts)[:take]
        assert got[i] == pytest.approx(sum(lows) / take)
        assert got_pp[i] == pytest.approx(sum(z) / take)


def test_lira_and_rmia_with_shadows_by_hand():
    s, _ = _signals(2, m=4)
    member = np.array([[1, 0, 1, 0, 1], [1, 1, 0, 0, 1], [0, 0, 1, 1, 0], [0, 1, 0, 1, 1]], dtype=bool)
    nll = s.mean_nll()
    lira = LM_ATTACKS.get("lm_lira")().score(s, member, target=0, reference=[1, 2, 3])
    out = [(r, i) for r in (1, 2, 3) for i in range(5) if not member[r, i]]
    mus = {i: np.mean([-nll[r, i] for r, j in out if j == i]) for i in range(5)}
    ss = sum((-nll[r, i] - mus[i]) ** 2 for r, i in out)
    counts = {i: sum(1 for _, j in out if j == i) for i in range(5)}
    pooled = ss / sum(c - 1 for c in counts.values() if c >= 2)
    for i in range(5):
        assert lira[i] == pytest.approx(-norm.logsf(-nll[0, i], mus[i], math.sqrt(pooled)))
    rmia = LM_ATTACKS.get("lm_rmia")().score(s, member, target=0, reference=[1, 2, 3])
    p = np.exp(-nll)
    def px(i):
        ins = [p[r, i] for r in (1, 2, 3) if member[r, i]]
        outs = [p[r, i] for r in (1, 2, 3) if not member[r, i]]
        return (np.mean(ins) + np.mean(outs)) / 2 if ins and outs else (
            0.5 * (1.3 * np.mean(outs) + 0.7) if outs else np.mean(ins))
    ratio = [p[0, i] / px(i) for i in range(5)]
    for i in range(5):
        assert rmia[i] == pytest.approx(sum(ratio[i] >= ratio[j] for j in range(5) if j != i) / 4)


def test_the_target_membership_row_is_never_read():
    s, _ = _signals(3, m=4)
    member = np.random.default_rng(0).random((4, 5)) < 0.5
    flipped = member.copy()
    flipped[0] = ~flipped[0]
    for name in LM_ATTACKS.names():
        a = LM_ATTACKS.get(name)()
        ref = [1, 2, 3] if a.needs_reference else []
        assert np.array_equal(a.score(s, member, target=0, reference=ref), a.score(s, flipped, target=0, reference=ref))
