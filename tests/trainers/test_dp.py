"""Clipping, noise and the BiasBank's equivalence to K single-model runs."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from scipy import stats

from dpaudit.errors import ConfigError, TrainingDivergedError
from dpaudit.trainers.classifier import BankedClassifier
from dpaudit.trainers.dp import ClippingConfig, DPAggregator
from dpaudit.rundir import RunDir
from dpaudit.trainers.loop import Trainer, TrainSettings
from dpaudit.trainers.randomness import make_sources

from tests.trainers._tiny import tiny_bert, tiny_population


def _clf(k: int, dtype=torch.float64, seed: int = 0) -> BankedClassifier:
    clf = BankedClassifier.from_backbone(tiny_bert(seed, dtype), num_models=k, num_labels=2)
    w = torch.randn(1, *clf.head.weight.shape[1:], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        clf.head.weight.copy_(w.expand_as(clf.head.weight))  # every row starts equal, as from a backbone
    return clf.to(dtype)


def _per_sample_clipped(clf, ids, mask, m, y, clipping):
    agg = DPAggregator(clf, clipping=clipping, noise_multiplier=0.0,
                       sources=make_sources(list(range(clf.num_models))))
    torch.nn.functional.cross_entropy(clf(ids, mask, m), y, reduction="sum").backward()
    per = [s.per_sample.clone() for s in clf.slots]
    agg.accumulate()
    return agg, per


@pytest.mark.parametrize("style", ["abadi", "automatic"])
@pytest.mark.parametrize("mode", ["all_layer", "layer_wise", "groups"])
def test_clipped_contributions_bounded(style, mode):
    enc, labels = tiny_population(8)
    ids, mask = enc.collate(np.arange(8), torch.device("cpu"))
    groups = {"attn": ("attention", 0.02), "rest": ("^(?!.*attention)", 0.01)} if mode == "groups" else {}
    clipping = ClippingConfig(max_grad_norm=0.01, style=style, mode=mode, groups=groups)
    for i in range(8):  # each example alone in its own row: the row sum IS its clipped gradient
        clf = _clf(1)
        agg, per = _per_sample_clipped(clf, ids[i : i + 1], mask[i : i + 1], torch.zeros(1, dtype=torch.long),
                                       torch.as_tensor(labels[i : i + 1]), clipping)
        total = torch.sqrt(sum(a.square().sum() for a in agg.sums))
        assert float(total) <= agg.total_norm * (1 + 1e-9)
        raw = torch.sqrt(sum(p.square().sum() for p in per))
        assert float(raw) > 0.01  # clipping was active
        if mode != "all_layer":
            for g, c in enumerate(agg.thresholds.tolist()):
                norm_g = torch.sqrt(sum(a.square().sum() for a, s in zip(agg.sums, clf.slots) if s.group == g))
                assert float(norm_g) <= c * (1 + 1e-9)


def test_groups_must_cover_every_tensor():
    clf = _clf(1)
    with pytest.raises(ConfigError, match="matches no clipping group"):
        DPAggregator(clf, clipping=ClippingConfig(mode="groups", groups={"a": ("attention", 1.0)}),
                     noise_multiplier=1.0, sources=make_sources([0]))


@pytest.mark.parametrize("seeds", [[5, 6], [None, None]], ids=["seeded", "secure"])
def test_noise_standard_deviation(seeds):
    """With zero gradients, the written gradient is pure noise N(0, (σ C_tot / (qN))²) per coordinate."""
    clf = _clf(2, dtype=torch.float32)
    sigma, c = 1.3, 0.7
    agg = DPAggregator(clf, clipping=ClippingConfig(max_grad_norm=c), noise_multiplier=sigma,
                       sources=make_sources(seeds))
    samples = []
    for step in range(10):
        agg.finalize(expected_batch_size=[2.0, 2.0], step=step)
        samples.append(torch.cat([s.param.grad.flatten() for s in clf.slots]))
    x = torch.cat(samples).double().numpy() * 2.0
    expected = sigma * c
    # chi-square test on the variance (n is large): two-sided p-value must not be tiny
    n = x.size
    chi2 = (n - 1) * x.var(ddof=1) / expected**2
    p = 2 * min(stats.chi2.cdf(chi2, n - 1), stats.chi2.sf(chi2, n - 1))
    assert p > 1e-4, (x.std(), expected)
    assert abs(x.mean()) < 5 * expected / np.sqrt(n)
    # rows use their own generators: different noise per row
    g = clf.slots[0].param.grad
    assert not torch.allclose(g[0], g[1])


def test_bank_equals_single_runs():
    """A bank of K models gives the same updates as K single-model runs with the same seeds."""
    enc, labels = tiny_population(40)
    rng = np.random.default_rng(0)
    membership = rng.random((3, 40)) < 0.5
    seeds = [11, 22, 33]
    settings = TrainSettings(epochs=1.0, batch_size=8, micro_batch_size=5, lr=0.05, noise_multiplier=0.8,
                             clipping=ClippingConfig(max_grad_norm=0.5), optimizer="adam")
    membership[:, :] = False
    for k in range(3):  # equal training-set sizes so q and q·N_k match a single run exactly
        membership[k, rng.choice(40, 20, replace=False)] = True
    bank = _clf(3)
    Trainer(bank, enc, labels, membership, settings, seeds=seeds, progress=False).run()
    for k in range(3):
        single = _clf(1)
        Trainer(single, enc, labels, membership[k : k + 1], settings, seeds=[seeds[k]], progress=False).run()
        for sb, ss in zip(bank.slots, single.slots):
            torch.testing.assert_close(sb.param[k], ss.param[0], rtol=1e-9, atol=1e-10)


def test_nan_loss_stops_and_keeps_checkpoint(tmp_path):
    enc, labels = tiny_population(40)
    clf = _clf(1)
    settings = TrainSettings(epochs=3.0, batch_size=10, micro_batch_size=10, lr=0.05, noise_multiplier=1.0)
    trainer = Trainer(clf, enc, labels, np.ones((1, 40), bool), settings, seeds=[0],
                      run=RunDir.claim(tmp_path, command="train"),
                      meta={"backbone_sha256": "x"}, progress=False)
    original = trainer._train_step
    calls = {"n": 0}

    def poisoned():
        calls["n"] += 1
        if calls["n"] == 6:  # after the first epoch (4 steps) was saved
            with torch.no_grad():
                clf.head.weight.fill_(float("nan"))
        return original()

    trainer._train_step = poisoned
    with pytest.raises(TrainingDivergedError, match="last good checkpoint is kept"):
        trainer.run()
    assert (tmp_path / "models.safetensors").is_file()
    from dpaudit.trainers.checkpoint import read_models

    tables, meta = read_models(tmp_path / "models.safetensors")
    assert meta["steps"] == 4 and torch.isfinite(tables["head.weight"]).all()


def test_resume_continues_identically(tmp_path):
    enc, labels = tiny_population(40)
    settings = TrainSettings(epochs=3.0, batch_size=10, micro_batch_size=7, lr=0.05, noise_multiplier=1.0)
    full = _clf(1)
    Trainer(full, enc, labels, np.ones((1, 40), bool), settings, seeds=[4], progress=False).run()
    clf = _clf(1)
    t = Trainer(clf, enc, labels, np.ones((1, 40), bool), settings, seeds=[4],
                run=RunDir.claim(tmp_path, command="train"),
                meta={"backbone_sha256": "x"}, progress=False)
    original = t._train_step
    calls = {"n": 0}

    def killed():
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return original()

    t._train_step = killed
    with pytest.raises(KeyboardInterrupt):
        t.run()
    resumed = _clf(1)
    out = Trainer(resumed, enc, labels, np.ones((1, 40), bool), settings, seeds=[4],
                run=RunDir.claim(tmp_path, command="train"),
                  meta={"backbone_sha256": "x"}, progress=False).run()
    assert out.resumed_from_step == 4
    for a, b in zip(full.slots, resumed.slots):
        torch.testing.assert_close(a.param, b.param, rtol=1e-9, atol=1e-10)


def test_budget_guard_stops():
    enc, labels = tiny_population(40)
    settings = TrainSettings(epochs=3.0, batch_size=10, micro_batch_size=10, noise_multiplier=1.0)
    out = Trainer(_clf(1), enc, labels, np.ones((1, 40), bool), settings, seeds=[0], max_steps=5,
                  progress=False).run()
    assert out.stopped_by_budget and out.steps == 5 and out.planned_steps == 12


def test_batch_larger_than_data():
    enc, labels = tiny_population(10)
    with pytest.raises(ConfigError, match="larger than the training set"):
        Trainer(_clf(1), enc, labels, np.ones((1, 10), bool), TrainSettings(batch_size=64), seeds=[0])


def test_cpu_bf16_autocast_clips_in_float32_and_trains_like_float32():
    """train.autocast on a CPU with native bf16: the forward runs in bf16, yet every example's clipped
    contribution is still ≤ C (sums and norms are float32) and the run stays close to the float32 one."""
    from dpaudit.trainers.loop import cpu_has_native_bf16

    if not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16")
    enc, labels = tiny_population(8)
    ids, mask = enc.collate(np.arange(8), torch.device("cpu"))
    clipping = ClippingConfig(max_grad_norm=0.01)
    for i in range(4):
        clf = _clf(1, dtype=torch.float32)
        agg = DPAggregator(clf, clipping=clipping, noise_multiplier=0.0, sources=make_sources([0]))
        with torch.no_grad():
            exact = clf(ids[i : i + 1], mask[i : i + 1], torch.zeros(1, dtype=torch.long))
            clf.bank.release()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = clf(ids[i : i + 1], mask[i : i + 1], torch.zeros(1, dtype=torch.long))
        assert not torch.equal(logits.detach().float(), exact)  # the forward really ran in bf16
        torch.nn.functional.cross_entropy(logits.float(), torch.as_tensor(labels[i : i + 1]), reduction="sum").backward()
        agg.accumulate()
        assert all(a.dtype == torch.float32 for a in agg.sums)
        assert float(torch.sqrt(sum(a.square().sum() for a in agg.sums))) <= 0.01 * (1 + 1e-6)
    enc, labels = tiny_population(40)
    membership = np.ones((1, 40), dtype=bool)
    trained = []
    for autocast in (False, True):
        clf = _clf(1, dtype=torch.float32)
        settings = TrainSettings(epochs=2.0, batch_size=10, micro_batch_size=8, lr=0.05, noise_multiplier=0.5,
                                 clipping=ClippingConfig(max_grad_norm=0.5), optimizer="adam", autocast=autocast)
        trainer = Trainer(clf, enc, labels, membership, settings, seeds=[7], progress=False)
        assert trainer.autocast is autocast
        trainer.run()
        trained.append(torch.cat([s.param.detach().flatten() for s in clf.slots]))
    start = torch.cat([s.param.detach().flatten() for s in _clf(1, dtype=torch.float32).slots])
    moved = (trained[0] - start).norm()
    assert (trained[1] - trained[0]).norm() < 0.2 * moved  # same seeds, same noise: bf16 rounding only


def test_bf16_scoring_runs_in_bf16_and_stays_close_to_float32(monkeypatch):
    """predict_logits(bf16=True) scores under autocast (the bank's scoring with train.autocast): the logits
    differ from float32 by rounding only."""
    from dpaudit.trainers.loop import cpu_has_native_bf16
    from dpaudit.trainers.predict import predict_logits

    if not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16")
    enc, _ = tiny_population(12)
    clf = _clf(2, dtype=torch.float32)
    exact = predict_logits(clf, enc, batch_size=5)
    rounded = predict_logits(clf, enc, batch_size=5, bf16=True)
    assert rounded.dtype == np.float32 and rounded.shape == exact.shape
    assert not np.array_equal(rounded, exact)  # the forward really ran in bf16
    assert np.abs(rounded - exact).max() < 0.05 * max(1.0, np.abs(exact).max())


def test_autocast_refused_on_a_cpu_without_bf16(monkeypatch):
    from dpaudit.trainers import loop

    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: False)
    enc, labels = tiny_population(10)
    with pytest.raises(ConfigError, match="train.autocast=false"):
        Trainer(_clf(1, dtype=torch.float32), enc, labels, np.ones((1, 10), dtype=bool),
                TrainSettings(epochs=1.0, batch_size=5, autocast=True), seeds=[0], progress=False)
