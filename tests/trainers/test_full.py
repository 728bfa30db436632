"""The ``full`` shadow recipe: Opacus per-sample clipping, learning, resume and run-dir integrity."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForSequenceClassification

from dpaudit.errors import ConfigError
from dpaudit.rundir import RunDir
from dpaudit.trainers import full
from dpaudit.trainers.batching import EncodedTexts
from dpaudit.trainers.full import FullRecipe, full_shadow_logits, train_full


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-bert-clf")
    torch.manual_seed(0)
    cfg = BertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     vocab_size=64, max_position_embeddings=32, num_labels=2)
    BertForSequenceClassification(cfg).save_pretrained(path)
    return path


def population(n: int = 64, seed: int = 0) -> tuple[EncodedTexts, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = tuple(rng.integers(1, 64, size=int(rng.integers(2, 9))) for _ in range(n))
    return EncodedTexts(ids, pad_id=0), np.array([int(x[0] % 2) for x in ids])


def recipe(**kw) -> FullRecipe:
    base = dict(non_private=False, noise_multiplier=0.0, sample_rate=1.0, steps=1, max_grad_norm=1.0, lr=0.1,
                optimizer="sgd", max_length=16, micro_batch_size=5)
    return FullRecipe(**{**base, **kw})


def flat(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def per_example_reference(model_dir, enc, labels, members, clip: float) -> torch.Tensor:
    """Σ_i min(1, C/‖g_i‖) g_i / N over members, one example at a time with plain autograd."""
    model = full._load(model_dir, 2, 16, seed=3).train()
    full._no_dropout(model)
    total = None
    for i in members:
        model.zero_grad()
        ids = torch.as_tensor(enc.ids[i])[None]
        F.cross_entropy(model(input_ids=ids).logits, torch.tensor([labels[i]]), reduction="sum").backward()
        g = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        g = g * min(1.0, clip / (float(g.norm()) + 1e-6))
        total = g if total is None else total + g
    return total / len(members)


def test_dp_update_is_the_mean_of_per_example_clipped_gradients(model_dir):
    """σ = 0, q = 1, one SGD step: Δθ = -lr · Σ clip(g_i) / N_k, checked against a per-example autograd loop
    (this fails if per-sample gradients are wrong, e.g. buffered position ids of batch size 1)."""
    enc, labels = population(12)
    mask = np.ones(12, dtype=bool)
    before = flat(full._load(model_dir, 2, 16, seed=3))
    for clip in (1e-3, 0.5):  # every example clipped / some not
        after = flat(train_full(model_dir, enc, labels, mask, 2, recipe(max_grad_norm=clip), seed=3, device="cpu"))
        expected = per_example_reference(model_dir, enc, labels, np.arange(12), clip)
        torch.testing.assert_close(before - after, 0.1 * expected, rtol=2e-3, atol=1e-7)
        assert float((before - after).norm()) <= 0.1 * clip * (1 + 1e-5)


def test_non_private_update_is_not_clipped_and_noise_moves_it(model_dir):
    enc, labels = population(12)
    mask = np.ones(12, dtype=bool)
    before = flat(full._load(model_dir, 2, 16, seed=3))
    plain = flat(train_full(model_dir, enc, labels, mask, 2, recipe(non_private=True, max_grad_norm=1e-3),
                            seed=3, device="cpu"))
    assert float((before - plain).norm()) > 10 * 0.1 * 1e-3
    noisy = [flat(train_full(model_dir, enc, labels, mask, 2, recipe(noise_multiplier=1.0, max_grad_norm=1e-3),
                             seed=s, device="cpu")) for s in (3, 3, 4)]
    torch.testing.assert_close(noisy[0], noisy[1])  # seeded: reproducible
    # the noise std per coordinate is lr·σ·C/N_k; over d coordinates the update norm ≈ that times √d
    d = before.numel()
    assert float((before - noisy[0]).norm()) > 0.5 * 0.1 * 1e-3 / 12 * d ** 0.5
    assert not torch.equal(noisy[0], noisy[2])


def mean_loss(model, enc, labels, members) -> float:
    inputs = full._Inputs(model, enc, torch.device("cpu"))
    with torch.no_grad():
        return float(F.cross_entropy(model.eval()(**inputs(members)).logits, torch.as_tensor(labels[members])))


def test_non_private_training_learns(model_dir):
    enc, labels = population(64)
    mask = np.zeros(64, dtype=bool)
    mask[:32] = True
    members = np.arange(32)
    start = mean_loss(full._load(model_dir, 2, 16, seed=5), enc, labels, members)
    model = train_full(model_dir, enc, labels, mask, 2, recipe(non_private=True, sample_rate=0.5, steps=40,
                                                               optimizer="adam", lr=1e-2), seed=5, device="cpu")
    assert not model.training
    assert mean_loss(model, enc, labels, members) < 0.7 * start


def test_empty_poisson_batches_still_step(model_dir):
    enc, labels = population(16)
    mask = np.ones(16, dtype=bool)
    before = flat(full._load(model_dir, 2, 16, seed=1))
    after = flat(train_full(model_dir, enc, labels, mask, 2, recipe(sample_rate=1e-6, steps=2, noise_multiplier=1.0),
                            seed=1, device="cpu"))
    assert not torch.equal(before, after)  # noise alone moved the weights


def test_recipe_validation():
    with pytest.raises(ConfigError, match=r"sample_rate must be in \(0, 1\], got sample_rate=0"):
        recipe(sample_rate=0)
    with pytest.raises(ConfigError, match="optimizer must be one of"):
        recipe(optimizer="lion")


def shadows(model_dir, run, membership, seeds, calls=None, monkeypatch=None):
    enc, labels = population(64)
    if monkeypatch is not None:
        real = full.train_full

        def counted(*args, **kwargs):
            calls.append(kwargs["seed"])
            return real(*args, **kwargs)

        monkeypatch.setattr(full, "train_full", counted)
    return full_shadow_logits(model_dir, enc, labels, membership, 2, recipe(sample_rate=0.25, steps=3,
                                                                             noise_multiplier=1.0),
                              seeds=seeds, run=run, device="cpu", score_batch_size=16)


def membership_rows(k: int = 2) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((k, 64)) < 0.5


def test_resume_skips_finished_models(model_dir, tmp_path, monkeypatch):
    run = RunDir.claim(tmp_path / "run", command="audit")
    calls: list[int] = []
    first = shadows(model_dir, run, membership_rows(), [10, 11], calls, monkeypatch)
    assert first.shape == (2, 64, 2) and first.dtype == np.float32 and calls == [10, 11]
    assert os.stat(run.file("shadow-full-000.npy")).st_mode & 0o777 == 0o600
    again = shadows(model_dir, RunDir.claim(tmp_path / "run", command="audit"), membership_rows(), [10, 11])
    assert calls == [10, 11]  # nothing retrained
    np.testing.assert_array_equal(first, again)


def test_a_killed_run_loses_only_the_model_in_progress(model_dir, tmp_path, monkeypatch):
    run = RunDir.claim(tmp_path / "run", command="audit")
    real = full.train_full
    calls: list[int] = []

    def dies_on_second(*args, **kwargs):
        calls.append(kwargs["seed"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(full, "train_full", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        shadows(model_dir, run, membership_rows(), [10, 11])
    monkeypatch.setattr(full, "train_full", real)
    calls.clear()
    shadows(model_dir, RunDir.claim(tmp_path / "run", command="audit"), membership_rows(), [10, 11], calls,
            monkeypatch)
    assert calls == [11]


def test_a_file_changed_after_commit_is_refused(model_dir, tmp_path):
    run = RunDir.claim(tmp_path / "run", command="audit")
    shadows(model_dir, run, membership_rows(1), [10])
    path = run.file("shadow-full-000.npy")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="changed after dpaudit wrote it"):
        shadows(model_dir, RunDir.claim(tmp_path / "run", command="audit"), membership_rows(1), [10])
