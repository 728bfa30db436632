"""Adversarial: a ``full`` shadow file committed for one membership row must never stand in for another.

A resume that trusted any verified ``shadow-full-000.npy`` would score LiRA with a reference model trained on
the wrong examples (its IN/OUT labels swapped for half the population) and silently weaken the attack.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification

from dpaudit.rundir import RunDir
from dpaudit.trainers import full
from dpaudit.trainers.batching import EncodedTexts
from dpaudit.trainers.full import FullRecipe, full_shadow_logits


def test_stale_shadow_for_another_membership_row_is_retrained(tmp_path, monkeypatch):
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                             intermediate_size=32, vocab_size=64, max_position_embeddings=32,
                                             num_labels=2)).save_pretrained(tmp_path / "model")
    rng = np.random.default_rng(0)
    ids = tuple(rng.integers(1, 64, size=int(rng.integers(2, 9))) for _ in range(32))
    enc, labels = EncodedTexts(ids, pad_id=0), np.array([int(x[0] % 2) for x in ids])
    recipe = FullRecipe(non_private=True, noise_multiplier=0.0, sample_rate=0.5, steps=10, max_grad_norm=1.0,
                        lr=1e-2, max_length=16, micro_batch_size=16)
    rows = np.zeros((2, 32), dtype=bool)
    rows[0, :16], rows[1, 16:] = True, True
    calls: list[int] = []
    real = full.train_full
    monkeypatch.setattr(full, "train_full", lambda *a, **k: calls.append(k["seed"]) or real(*a, **k))

    def run(row):
        return full_shadow_logits(tmp_path / "model", enc, labels, rows[row : row + 1], 2, recipe, seeds=[7],
                                  run=RunDir.claim(tmp_path / "run", command="audit"), device="cpu")

    first = run(0)
    second = run(1)  # same file name, same seed, other training set
    assert calls == [7, 7]
    assert not np.allclose(first, second)
    assert RunDir.claim(tmp_path / "run", command="audit").entry("shadow-full-000.npy")["membership_sha256"] \
        != full.hashlib.sha256(np.packbits(rows[0]).tobytes()).hexdigest()
