from __future__ import annotations

import numpy as np

import torch
from transformers import BertConfig, BertModel

from dpaudit.trainers.batching import EncodedTexts


def tiny_bert(seed: int = 0, dtype=torch.float32) -> BertModel:
    torch.manual_seed(seed)
    cfg = BertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     vocab_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                     max_position_embeddings=32)
    return BertModel(cfg).to(dtype).eval()


def tiny_population(n: int = 48, seed: int = 0) -> tuple[EncodedTexts, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = tuple(rng.integers(1, 64, size=int(rng.integers(2, 9))) for _ in range(n))
    labels = np.array([int(x.sum() % 2) for x in ids])
    return EncodedTexts(ids, pad_id=0), labels



