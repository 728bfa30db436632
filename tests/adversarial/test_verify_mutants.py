"""`dpaudit verify` catches broken DP steps: each mutant breaks the REAL trainer code (monkeypatched), the
accountant is still told the claimed (σ, q), and the white-box ε lower bound must exceed the claimed ε.
The correct step is never flagged over seeded repetitions. Seeded noise keeps every run deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dpaudit.config import load_config
from dpaudit.trainers import loop
from dpaudit.trainers.dp import DPAggregator
from dpaudit.verify import run_mechanism_check
from tests.trainers._tiny import tiny_bert, tiny_population

CANARIES = 20000
#: The accountant claims the whole curve ε(δ); a violation at any δ proves the step wrong. At δ = 1e-2 (< 1/N for
#: the 64 examples) 20000 canaries resolve the rates that separate each mutant from the claim; at δ = 1e-5 the
#: same separation needs FPRs near 1e-5, i.e. millions of canaries (benchmarks/verify_tightness.py).
DELTA = 1e-2


#: σ for ε ≈ 0.99 at δ = 1e-2, q = 0.25, 4 steps (given as σ, so no calibration runs in CI).
SIGMA = 1.2734375


def _check(seed: int = 0, *, published: bool = False):
    torch.set_num_threads(1)
    encoded, labels = tiny_population(64)
    cfg, _ = load_config(None, [("privacy", "noise_multiplier", SIGMA), ("privacy", "delta", DELTA),
                                ("train", "batch_size", 16), ("train", "epochs", 1.0), ("train", "device", "cpu"),
                                ("train", "noise", "seeded"), ("train", "seed", seed)])
    return run_mechanism_check(cfg, num_canaries=CANARIES, backbone=tiny_bert(), encoded=encoded, labels=labels,
                               seed_published=published, members=np.arange(64))


def _after_init(monkeypatch, change) -> None:
    original = DPAggregator.__init__

    def broken(self, *args, **kwargs):
        original(self, *args, **kwargs)
        change(self)

    monkeypatch.setattr(DPAggregator, "__init__", broken)


def _caught(result) -> None:
    assert not result.passed
    assert result.epsilon_lower_bound > result.claimed_epsilon


def test_noise_multiplier_halved_is_caught(monkeypatch):
    _after_init(monkeypatch, lambda agg: setattr(agg, "noise_multiplier", agg.noise_multiplier * 0.5))
    _caught(_check())


def test_clipping_off_is_caught(monkeypatch):
    _after_init(monkeypatch, lambda agg: setattr(agg, "thresholds", agg.thresholds * 1e6))
    _caught(_check())


def test_sampling_rate_doubled_without_telling_the_accountant_is_caught(monkeypatch):
    original = loop.sample_rate_and_steps

    def doubled(settings, sizes):
        q, steps = original(settings, sizes)
        return min(1.0, 2.0 * q), steps

    monkeypatch.setattr(loop, "sample_rate_and_steps", doubled)
    result = _check()
    assert result.sample_rate == pytest.approx(0.25)  # the accountant was told the old q
    _caught(result)


def _per_table_accumulate(self) -> None:
    """DPAggregator.accumulate with the per-layer bug: every table's per-sample gradient clipped to C on its
    own (layer-wise clipping without the 1/√G), while the noise stays σ·C."""
    bank = self.classifier.bank
    m = bank.model_index
    for slot, acc in zip(self.slots, self.sums):
        if slot.per_sample is None:
            continue
        norms = slot.per_sample.reshape(len(m), -1).norm(dim=1)
        factors = (self.clipping.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        self.kernels.scaled_bank_sum(slot.per_sample, factors, m, acc)
    self.counts.index_add_(0, m, torch.ones_like(m, dtype=torch.float32))
    self._examples += m.numel()
    bank.release()


def test_per_table_clipping_is_caught(monkeypatch):
    """A canary spread over 4 tables lets 2·C through per-table clipping; a one-table canary never showed it."""
    monkeypatch.setattr(DPAggregator, "accumulate", _per_table_accumulate)
    _caught(_check())


def test_per_table_groups_are_caught(monkeypatch):
    """The same bug through the aggregator's own groups: one group per table, each threshold C."""
    def per_table(agg):
        n = len(agg.slots)
        agg.classifier.bank.set_groups(list(range(n)), n)
        agg.thresholds = torch.full((n,), agg.clipping.max_grad_norm, dtype=agg.thresholds.dtype)

    _after_init(monkeypatch, per_table)
    _caught(_check())


def _noiseless_views(monkeypatch) -> np.ndarray:
    """The views of a published-seed check with the regenerated noise subtracted: the clipped canary alone."""
    from dpaudit.verify import check

    seen = []
    original = check.epsilon_from_views
    monkeypatch.setattr(check, "epsilon_from_views",
                        lambda views, *a, **k: seen.append(views) or original(views, *a, **k))
    _check(published=True)
    return seen[0]


@pytest.mark.parametrize("broken, through", [(False, 1.0), (True, 2.0)])
def test_a_drawn_canary_reads_what_clipping_let_through(monkeypatch, broken, through):
    """White-box: along u_j a drawn canary reads exactly C under whole-gradient clipping, 2·C (√P·C) under
    per-table clipping; an OUT canary reads 0."""
    if broken:
        monkeypatch.setattr(DPAggregator, "accumulate", _per_table_accumulate)
    views = _noiseless_views(monkeypatch)
    np.testing.assert_allclose(views[CANARIES // 2:], 0.0, atol=1e-4)
    drawn = views[: CANARIES // 2] > through / 2
    np.testing.assert_allclose(views[: CANARIES // 2][drawn], through, rtol=1e-4)
    np.testing.assert_allclose(views[: CANARIES // 2][~drawn], 0.0, atol=1e-4)
    assert abs(drawn.mean() - 0.25) < 0.01  # each drawn with q = 0.25


def test_noise_reused_across_steps_is_caught(monkeypatch):
    """The noise stream ignores the step index: consecutive updates carry the same noise, which cancels in
    their differences (OUT canaries exactly 0)."""
    original = DPAggregator.finalize

    def reused(self, *, expected_batch_size, step):
        original(self, expected_batch_size=expected_batch_size, step=0)

    monkeypatch.setattr(DPAggregator, "finalize", reused)
    _caught(_check())


def test_seeded_noise_with_published_seed_is_caught():
    result = _check(published=True)
    assert result.seed_published and result.noise == "seeded"
    _caught(result)


@pytest.mark.parametrize("seed", range(10))
def test_correct_step_is_never_flagged(seed):
    result = _check(seed)
    assert result.passed, result
    assert 0.0 <= result.tightness <= 1.0
