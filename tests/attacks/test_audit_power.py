"""Statistical end-to-end claims of the audit, on a tiny random-weight BERT and random labels.

With random labels nothing generalises, so any membership signal is memorisation:

(a) an overfit non-private target is clearly attackable (LOSS / LiRA AUC ≥ 0.7);
(b) a DP-BiTFiT target at ε = 1 never yields an empirical ε lower bound above 1 (Clopper–Pearson of
    the strongest attack, and the one-run canary bound), over 3 seeds;
(c) a trainer whose noise is switched off while its accountant still claims ε = 1 is caught: its
    one-run canary ε lower bound exceeds the claim.

The backbone is a 2-layer BERT (hidden 64, FFN 256) with a large init range (0.2) so its random
features are non-linear enough for the biases to memorise ~200 random labels. Training, scoring and
attacks use the real components (BiasBank trainer, predict_logits, Signals, evaluate_attack,
canary_audit, accounting); no CLI. Tiny models run on one torch thread: on a busy 2-core machine
the OpenMP threads of two-thread tiny ops spin and run ~30× slower.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

from dpaudit.attacks.canary import canary_audit
from dpaudit.attacks.evaluate import evaluate_attack
from dpaudit.attacks.membership import make_membership
from dpaudit.attacks.registry import create_attack
from dpaudit.attacks.signals import Signals
from dpaudit.privacy import calibrate_noise, compute_epsilon, default_delta
from dpaudit.trainers.batching import EncodedTexts
from dpaudit.trainers.classifier import BankedClassifier
from dpaudit.trainers.dp import ClippingConfig, DPAggregator
from dpaudit.trainers.loop import Trainer, TrainSettings, sample_rate_and_steps
from dpaudit.trainers.predict import predict_logits

VOCAB = 256
SIGNIFICANCE = 0.05
ATTACKS = ("loss", "shadow", "lira_online", "lira_offline", "rmia")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _backbone(seed: int) -> BertModel:
    torch.manual_seed(seed)
    cfg = BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
                     vocab_size=VOCAB, initializer_range=0.2, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0, max_position_embeddings=32)
    return BertModel(cfg).eval()


def _population(n: int, n_classes: int, seed: int) -> tuple[EncodedTexts, np.ndarray]:
    """n random token sequences (6–12 tokens) with labels drawn uniformly at random."""
    rng = np.random.default_rng(seed)
    ids = tuple(rng.integers(1, VOCAB, size=int(rng.integers(6, 13))) for _ in range(n))
    return EncodedTexts(ids, pad_id=0), rng.integers(0, n_classes, size=n)


def _train(encoded, labels, membership, settings, *, seed: int, n_classes: int) -> Signals:
    """Train one bank row per membership row; return every row's logits on the whole population."""
    clf = BankedClassifier.from_backbone(_backbone(seed), num_models=len(membership), num_labels=n_classes)
    seeds = [1000 * seed + 17 + k for k in range(len(membership))]
    Trainer(clf, encoded, labels, membership, settings, seeds=seeds, progress=False).run(resume=False)
    return Signals(predict_logits(clf, encoded), labels)


def _dp_settings(membership, *, epochs: float, batch_size: int, lr: float, epsilon: float):
    """Settings with σ calibrated so the accountant states ``epsilon``; returns (settings, δ, claimed ε)."""
    probe = TrainSettings(epochs=epochs, batch_size=batch_size)
    sizes = membership.sum(1).tolist()
    q, steps = sample_rate_and_steps(probe, sizes)
    delta = default_delta(int(min(sizes)))
    sigma = calibrate_noise(target_epsilon=epsilon, delta=delta, sample_rate=q, steps=steps)
    claimed = compute_epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=delta)
    settings = TrainSettings(epochs=epochs, batch_size=batch_size, micro_batch_size=512, lr=lr,
                             noise_multiplier=sigma, clipping=ClippingConfig(max_grad_norm=1.0),
                             target_epsilon=epsilon, delta=delta)
    return settings, delta, claimed


def test_overfit_nonprivate_target_is_attackable():
    """(a) Non-private BiTFiT, 30 epochs at a high lr, N=200: LOSS and LiRA separate members (AUC ≥ 0.7)."""
    n, n_classes = 200, 2
    encoded, labels = _population(n, n_classes, seed=0)
    membership = make_membership(n, 5, seed=1)  # target + 4 shadows, one bank
    settings = TrainSettings(epochs=30, batch_size=25, micro_batch_size=512, lr=0.01, non_private=True)
    signals = _train(encoded, labels, membership, settings, seed=0, n_classes=n_classes)
    train_acc = (signals.logits[0].argmax(1) == labels)[membership[0]].mean()
    assert train_acc >= 0.95  # memorised
    for name in ("loss", "lira_online", "lira_offline"):
        result = evaluate_attack(name, signals, membership, delta=1e-3, fprs=(0.1,))
        assert result.status == "ok"
        assert result.auc >= 0.7, f"{name}: AUC {result.auc:.3f} on an overfit non-private target"


@pytest.mark.parametrize("seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
def test_dp_target_at_epsilon_one_has_lower_bounds_below_one(seed):
    """(b) The same memorisation-friendly recipe with DP at ε = 1: no bound exceeds 1, every attack's
    one-run bound (larger of one-run and f-DP, Bonferroni over the two) and the one-run canary audit
    (LOSS and LiRA-offline scores)."""
    n, n_classes = 200, 10
    encoded, labels = _population(n, n_classes, seed=seed)
    membership = make_membership(n, 5, seed=seed + 1)
    settings, delta, claimed = _dp_settings(membership, epochs=30, batch_size=25, lr=0.01, epsilon=1.0)
    assert claimed <= 1.0 + 1e-9
    signals = _train(encoded, labels, membership, settings, seed=seed, n_classes=n_classes)
    bounds = {}
    for name in ATTACKS:
        result = evaluate_attack(name, signals, membership, delta=delta, significance=SIGNIFICANCE,
                                 fprs=(0.1,), guess_fraction=0.2)
        bounds[name] = result.epsilon_lb["epsilon_lb"]
    for name in ("loss", "lira_offline"):
        scores = create_attack(name).score(signals, membership, target=0, reference=np.arange(1, 5))
        canary = canary_audit(scores, membership[0], delta=delta, significance=SIGNIFICANCE, guess_fraction=0.2)
        bounds[f"canary/{name}"] = canary.epsilon_lb
    assert max(bounds.values()) <= claimed, bounds


def test_noise_switched_off_is_caught_by_canary_audit(monkeypatch):
    """(c) Clipping on, noise off, σ still calibrated for ε = 1 (what the accountant states): the one-run
    canary audit with LOSS scores on the target proves ε > 1.

    One model, m = 400 canaries (N=400, each IN with probability ½), 10 random classes (a non-member is
    rarely confidently right by chance), 60 epochs; guess_fraction 0.2 gives 40 IN + 40 OUT guesses.
    """
    n, n_classes = 400, 10
    encoded, labels = _population(n, n_classes, seed=0)
    membership = make_membership(n, 3, seed=1)[:1]  # row 0: i.i.d. Bernoulli(½), as the audit requires
    settings, delta, claimed = _dp_settings(membership, epochs=60, batch_size=50, lr=0.01, epsilon=1.0)
    assert settings.noise_multiplier > 1.0 and claimed <= 1.0 + 1e-9

    finalize = DPAggregator.finalize
    calls = []

    def noiseless_finalize(self, **kwargs):  # the bug under test: the noise never gets added
        calls.append(self.noise_multiplier)
        self.noise_multiplier = 0.0
        return finalize(self, **kwargs)

    monkeypatch.setattr(DPAggregator, "finalize", noiseless_finalize)
    signals = _train(encoded, labels, membership, settings, seed=0, n_classes=n_classes)
    assert calls and calls[0] == settings.noise_multiplier  # the trainer was set up with the claimed σ
    canary = canary_audit(-signals.loss[0], membership[0], delta=delta, significance=SIGNIFICANCE,
                          guess_fraction=0.2)
    assert canary.status == "ok" and canary.num_guesses == 80
    assert canary.epsilon_lb > claimed, (canary.epsilon_lb, canary.num_correct)
