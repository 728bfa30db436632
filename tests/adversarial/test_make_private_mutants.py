"""Mutants of ``dpaudit.make_private`` that a wrong privacy statement would need, each caught by a check that
passes on the honest code: the noise switched off, σ halved, an optimizer step not counted by the accountant,
clipping switched off, and sampling that is not Poisson (a fixed batch size)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import dpaudit
import dpaudit.private as private_mod
from dpaudit.privacy import compute_epsilon
from dpaudit.trainers import private_optim, poisson
from tests.trainers._hf_tiny import loader, loss_of, tiny_classifier, token_data

C, SIGMA = 0.05, 2.0


def _make(sigma: float, *, batch_size: int = 8, n: int = 32, seed: int = 1):
    model = tiny_classifier()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
    engine = dpaudit.PrivacyEngine()
    model, opt, dl = engine.make_private(module=model, optimizer=opt, data_loader=loader(token_data(n), batch_size),
                                         noise_multiplier=sigma, max_grad_norm=C, seed=seed)
    return engine, model, opt, dl


def _one_step(sigma: float) -> dict[str, torch.Tensor]:
    _, model, opt, _ = _make(sigma)
    loss_of(model, token_data(32)[:8]).backward()
    opt.step()
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def noise_is_calibrated() -> bool:
    """The step's noise, in units of σC/(q·N), has unit standard deviation."""
    clean, noisy = _one_step(0.0), _one_step(SIGMA)
    z = np.concatenate([((noisy[k] - clean[k]) * 8 / (SIGMA * C)).reshape(-1).numpy() for k in clean])
    return abs(z.std() - 1.0) < 0.15


def every_step_is_accounted() -> bool:
    engine, model, opt, dl = _make(1.0, batch_size=4, n=16)
    taken = 0
    for batch in dl:
        if len(batch[0]):
            loss_of(model, batch).backward()
        opt.step()
        opt.zero_grad()
        taken += 1
    expected = compute_epsilon(noise_multiplier=1.0, sample_rate=0.25, steps=taken, delta=1e-5,
                               accountant="prv", neighbouring="add_remove")
    return engine.steps == taken and engine.get_epsilon(1e-5) == pytest.approx(expected, rel=1e-9)


def clipping_bounds_each_example() -> bool:
    """With σ = 0 the per-step update, times q·N, has norm at most B·C (each example contributes ≤ C)."""
    start = {n: p.detach().clone() for n, p in tiny_classifier().named_parameters() if p.requires_grad}
    after = _one_step(0.0)
    norm = torch.sqrt(sum(((after[k] - start[k]) * 8).square().sum() for k in after))
    return float(norm) <= 8 * C * (1 + 1e-9)


def batches_are_poisson() -> bool:
    """Batch sizes vary, with mean q·N, over 400 draws (a fixed-size sampler has zero variance)."""
    _, _, _, dl = _make(1.0, batch_size=4, n=16)
    dl.batch_sampler.steps = 400
    sizes = np.array([len(b) for b in dl.batch_sampler])
    return abs(sizes.mean() - 4) < 0.5 and abs(sizes.var() - 16 * 0.25 * 0.75) < 1.0


CHECKS = [noise_is_calibrated, every_step_is_accounted, clipping_bounds_each_example, batches_are_poisson]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_honest_code_passes(check):
    assert check()


def _scale_sigma(monkeypatch, factor: float) -> None:
    original = private_optim.PrivateOptimizer.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.noise_multiplier *= factor

    monkeypatch.setattr(private_optim.PrivateOptimizer, "__init__", init)


def test_noise_off_is_caught(monkeypatch):
    _scale_sigma(monkeypatch, 0.0)
    assert not noise_is_calibrated()


def test_sigma_halved_is_caught(monkeypatch):
    _scale_sigma(monkeypatch, 0.5)
    assert not noise_is_calibrated()


def test_a_step_not_counted_is_caught(monkeypatch):
    original = private_mod.PrivacyEngine._record_step
    calls = []

    def record(self):
        calls.append(1)
        if len(calls) != 2:  # the second step goes unaccounted
            original(self)

    monkeypatch.setattr(private_mod.PrivacyEngine, "_record_step", record)
    assert not every_step_is_accounted()


def test_clipping_off_is_caught(monkeypatch):
    monkeypatch.setattr(private_optim, "clip_factors", lambda norms, c, style: torch.ones_like(norms))
    assert not clipping_bounds_each_example()


def test_fixed_size_batches_are_caught(monkeypatch):
    def fixed(self):
        for s in range(self.steps):
            yield [(4 * s + i) % self.num_examples for i in range(4)]

    monkeypatch.setattr(poisson.PoissonBatchSampler, "__iter__", fixed)
    assert not batches_are_poisson()
