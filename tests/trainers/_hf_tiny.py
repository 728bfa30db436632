"""A tiny random-weight ``BertForSequenceClassification`` (no dropout) and token data for the library tests."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset
from transformers import BertConfig, BertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification


def tiny_classifier(seed: int = 0, dtype=torch.float64) -> BertForSequenceClassification:
    """2 layers, hidden 16, 2 labels; biases and the classifier trainable (the seed's DP-BiTFiT snippet)."""
    torch.manual_seed(seed)
    cfg = BertConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                     vocab_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                     max_position_embeddings=32, num_labels=2)
    model = BertForSequenceClassification(cfg).to(dtype)
    for n, p in model.named_parameters():
        p.requires_grad = ("bias" in n) or n.startswith("classifier")
    return model


def tiny_roberta(seed: int = 0, dtype=torch.float64) -> RobertaForSequenceClassification:
    """RoBERTa's head is ``classifier.dense`` (tanh) + ``classifier.out_proj`` on the first token: both trainable."""
    torch.manual_seed(seed)
    cfg = RobertaConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                        vocab_size=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                        max_position_embeddings=40, num_labels=2, pad_token_id=1)
    model = RobertaForSequenceClassification(cfg).to(dtype)
    for n, p in model.named_parameters():
        p.requires_grad = ("bias" in n) or n.startswith("classifier")
    return model


def token_data(n: int = 32, length: int = 8, seed: int = 0) -> TensorDataset:
    """``(input_ids, attention_mask, labels)``: random ids, the last positions of odd rows padded."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 64, (n, length), generator=g)
    mask = torch.ones(n, length, dtype=torch.long)
    mask[1::2, length - 3:] = 0
    ids = ids * mask
    labels = (ids.sum(1) % 2).long()
    return TensorDataset(ids, mask, labels)


def loader(ds: TensorDataset, batch_size: int = 8) -> DataLoader:
    return DataLoader(ds, batch_size=batch_size)


def loss_of(model, batch):
    ids, mask, labels = batch
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss
