"""``dpaudit.make_private`` on a Hugging Face ``BertForSequenceClassification`` (tiny, random weights, float64).

* per-sample clipped sums equal a per-example autograd loop (independent reference);
* with the noise off, one step equals opacus' ``PrivacyEngine`` step on the same model and batch; with noise,
  the noise has the same law as opacus' (N(0, σ²C²)/(q·N) per coordinate); same σ, q, steps → same ε;
* the seed's opacus snippet runs with one changed import; Poisson batches (random sizes, empty ones included);
* refusals: a trainable weight outside DP-BiTFiT's set, gradient accumulation, opacus options that change the
  mechanism, a head weight that sees a sequence.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import dpaudit
from dpaudit.errors import ConfigError, UnsupportedModuleError
from dpaudit.privacy import compute_epsilon
from tests.trainers._hf_tiny import loader, loss_of, tiny_classifier, tiny_roberta, token_data

C = 0.05  # small enough that most examples are clipped


def _trainable(model):
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def _private(model, ds, *, sigma=0.0, batch_size=8, lr=1.0, seed=0):
    opt = torch.optim.SGD([p for _, p in _trainable(model)], lr=lr)
    engine = dpaudit.PrivacyEngine()
    model, opt, dl = engine.make_private(module=model, optimizer=opt, data_loader=loader(ds, batch_size),
                                         noise_multiplier=sigma, max_grad_norm=C, seed=seed)
    return engine, model, opt, dl


def _reference_clipped_sum(model, batch) -> dict[str, torch.Tensor]:
    """Σ_i min(1, C/‖∇ℓ_i‖) ∇ℓ_i by one autograd call per example (no hooks)."""
    names = [n for n, _ in _trainable(model)]
    params = [p for _, p in _trainable(model)]
    total = [torch.zeros_like(p) for p in params]
    for i in range(len(batch[0])):
        one = tuple(x[i:i + 1] for x in batch)
        grads = torch.autograd.grad(loss_of(model, one), params)
        norm = torch.sqrt(sum(g.square().sum() for g in grads))
        factor = min(1.0, C / (float(norm) + 1e-6))
        for acc, g in zip(total, grads):
            acc.add_(factor * g)
    return dict(zip(names, total))


@pytest.mark.parametrize("make, head", [(tiny_classifier, "classifier.weight"),
                                        (tiny_roberta, "classifier.dense.weight")], ids=["bert", "roberta"])
def test_clipped_sums_equal_a_per_example_loop(make, head):
    ds = token_data(16)
    reference_model = make()
    batch = ds[:8]
    expected = _reference_clipped_sum(reference_model, batch)
    engine, model, opt, _ = _private(make(), ds)
    loss_of(model, batch).backward()
    sums = dict(zip([t.name for t in opt.hooks.tracked], opt.clipped_sums()))
    assert set(sums) == set(expected)
    assert head in sums and any(n.endswith("LayerNorm.bias") for n in sums)
    for name in expected:
        torch.testing.assert_close(sums[name], expected[name], rtol=1e-9, atol=1e-12)
    assert opt.last_clip_fraction > 0.5  # the clipping was exercised


def _opacus_step(model, ds, batch, *, sigma, seed=0):
    from opacus import PrivacyEngine as OpacusEngine

    opt = torch.optim.SGD([p for _, p in _trainable(model)], lr=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = OpacusEngine(accountant="prv")
        gen = torch.Generator().manual_seed(seed)
        module, opt, dl = engine.make_private(module=model, optimizer=opt, data_loader=loader(ds, 8),
                                              noise_multiplier=sigma, max_grad_norm=C, noise_generator=gen)
        loss_of(module, batch).backward()
        opt.step()
    return {n.removeprefix("_module."): p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}, engine


def _dpaudit_step(model, ds, batch, *, sigma, seed=0):
    engine, model, opt, _ = _private(model, ds, sigma=sigma, seed=seed)
    loss_of(model, batch).backward()
    opt.step()
    return {n: p.detach().clone() for n, p in _trainable(model)}, engine


def test_noise_off_step_equals_opacus():
    ds = token_data(32)  # batch 8 → q = 1/4, q·N = 8 for both
    batch = ds[:8]
    ours, _ = _dpaudit_step(tiny_classifier(), ds, batch, sigma=0.0)
    theirs, _ = _opacus_step(tiny_classifier(), ds, batch, sigma=0.0)
    assert set(ours) == set(theirs)
    start = {n: p.detach() for n, p in _trainable(tiny_classifier())}
    moved = sum(float((ours[n] - start[n]).abs().max()) for n in ours)
    assert moved > 1e-3
    for n in ours:
        torch.testing.assert_close(ours[n], theirs[n], rtol=1e-9, atol=1e-12)


def test_noise_has_opacus_law_and_the_accounting_matches():
    ds = token_data(32)
    batch = ds[:8]
    sigma = 2.0
    clean, _ = _dpaudit_step(tiny_classifier(), ds, batch, sigma=0.0)
    ours_noisy, ours_engine = _dpaudit_step(tiny_classifier(), ds, batch, sigma=sigma, seed=5)
    theirs_noisy, theirs_engine = _opacus_step(tiny_classifier(), ds, batch, sigma=sigma, seed=5)
    scale = sigma * C / 8  # std of the noise in the gradient (and, at lr 1, in the step)
    ours = np.concatenate([((ours_noisy[n] - clean[n]) / scale).reshape(-1).numpy() for n in clean])
    theirs = np.concatenate([((theirs_noisy[n] - clean[n]) / scale).reshape(-1).numpy() for n in clean])
    assert len(ours) > 300
    assert stats.kstest(ours, "norm").pvalue > 1e-3
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3
    assert abs(ours.std() - 1) < 0.15 and abs(theirs.std() - 1) < 0.15
    assert ours_engine.steps == 1
    assert ours_engine.get_epsilon(1e-5) == pytest.approx(theirs_engine.get_epsilon(1e-5), rel=1e-6)


def test_seed_snippet_runs_with_one_changed_import():
    model = tiny_classifier(dtype=torch.float32)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    engine = dpaudit.PrivacyEngine()
    data = loader(token_data(40), 4)
    model, optimizer, data = engine.make_private(module=model, optimizer=optimizer, data_loader=data,
                                                 noise_multiplier=1.0, max_grad_norm=0.1)
    sizes = []
    for _ in range(2):
        for ids, mask, labels in data:
            sizes.append(len(ids))
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    assert engine.steps == len(sizes) == 20 and optimizer.source.kind == "secure"
    assert len(set(sizes)) > 1  # Poisson: random batch sizes
    assert engine.get_epsilon(delta=1e-5) == pytest.approx(
        compute_epsilon(noise_multiplier=1.0, sample_rate=0.1, steps=20, delta=1e-5,
                        accountant="prv", neighbouring="add_remove"))


def test_poisson_batches_and_empty_batches_take_a_noise_only_step():
    ds = token_data(20)
    engine, model, opt, dl = _private(tiny_classifier(), ds, sigma=1.0, batch_size=1, seed=3)
    before = {n: p.detach().clone() for n, p in _trainable(model)}
    sizes = []
    for batch in dl:
        sizes.append(len(batch[0]))
        if sizes[-1] == 0:
            assert batch[0].shape == (0, 8)
            out = model(input_ids=batch[0], attention_mask=batch[1], labels=batch[2])
            assert out.logits.shape == (0, 2)
            out.loss.backward()
            opt.step()
            opt.zero_grad()
            break
        loss_of(model, batch).backward()
        opt.step()
        opt.zero_grad()
    assert sizes[-1] == 0 and engine.steps == len(sizes)
    assert all(not torch.equal(before[n], p) for n, p in _trainable(model))
    counts = [len(b) for b in dl.batch_sampler]
    assert len(counts) == 20 and 0 < np.mean(counts) < 3


def test_sigma_calibrated_from_target_epsilon():
    model = tiny_classifier()
    opt = torch.optim.SGD([p for _, p in _trainable(model)], lr=0.1)
    engine = dpaudit.PrivacyEngine()
    engine.make_private_with_epsilon(module=model, optimizer=opt, data_loader=loader(token_data(32), 8),
                                     target_epsilon=2.0, target_delta=1e-5, epochs=3, max_grad_norm=1.0)
    eps = compute_epsilon(noise_multiplier=engine.noise_multiplier, sample_rate=0.25, steps=12, delta=1e-5,
                          accountant="prv", neighbouring="add_remove")  # the engine's default, as opacus
    assert eps <= 2.0 and eps > 1.9


@pytest.mark.parametrize("name", ["bert.encoder.layer.0.attention.self.query.weight",
                                  "bert.embeddings.word_embeddings.weight", "bert.embeddings.LayerNorm.weight"])
def test_a_trainable_weight_outside_dp_bitfit_is_refused_by_name(name):
    model = tiny_classifier()
    dict(model.named_parameters())[name].requires_grad = True
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    with pytest.raises(UnsupportedModuleError, match=name.replace(".", r"\.")) as err:
        dpaudit.make_private(module=model, optimizer=opt, data_loader=loader(token_data()), noise_multiplier=1.0,
                             max_grad_norm=1.0)
    assert "\n" not in str(err.value)


def test_gradient_accumulation_is_refused():
    ds = token_data(16)
    _, model, opt, _ = _private(tiny_classifier(), ds)
    loss_of(model, ds[:4]).backward()
    with pytest.raises(ConfigError, match="second backward"):
        loss_of(model, ds[4:8]).backward()


@pytest.mark.parametrize("kwargs", [{"poisson_sampling": False}, {"clipping": "per_layer"},
                                    {"noise_generator": torch.Generator()}, {"grad_sample_mode": "ghost"},
                                    {"max_grad_norm": [1.0, 2.0]}, {"noise_multiplier": -1.0}])
def test_options_that_change_the_mechanism_are_refused(kwargs):
    model = tiny_classifier()
    opt = torch.optim.SGD([p for _, p in _trainable(model)], lr=0.1)
    args = {"noise_multiplier": 1.0, "max_grad_norm": 1.0, **kwargs}
    with pytest.raises((ConfigError, dpaudit.private.PrivacyError)):
        dpaudit.make_private(module=model, optimizer=opt, data_loader=loader(token_data()), **args)


def test_a_head_weight_that_sees_tokens_is_refused():
    class PerToken(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.out = nn.Linear(4, 2)
            self.emb.weight.requires_grad = False

        def forward(self, ids):
            return self.out(self.emb(ids)).mean(1)

    model = PerToken()
    opt = torch.optim.SGD(model.out.parameters(), lr=0.1)
    ds = torch.utils.data.TensorDataset(torch.randint(0, 10, (8, 3)))
    model, opt, dl = dpaudit.make_private(module=model, optimizer=opt, data_loader=loader(ds, 4),
                                          noise_multiplier=1.0, max_grad_norm=1.0)
    with pytest.raises(UnsupportedModuleError, match="'out' sees an input of shape"):
        model(ds[:4][0])


def test_the_model_is_returned_unwrapped_and_detach_restores_it():
    model = tiny_classifier()
    plain = copy.deepcopy(model)
    engine, returned, opt, _ = _private(model, token_data())
    assert returned is model and isinstance(opt, torch.optim.Optimizer)
    engine.detach()
    batch = token_data()[:4]
    torch.testing.assert_close(model(input_ids=batch[0], attention_mask=batch[1]).logits,
                               plain(input_ids=batch[0], attention_mask=batch[1]).logits)
