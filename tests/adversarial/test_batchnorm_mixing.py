"""Mutant: train-mode BatchNorm mixes the examples of a batch, so one example's per-sample gradient depends
on another example — clipping it to C would no longer bound one example's influence. dpaudit's BiasBank pins
every BatchNorm in eval mode (running statistics frozen); without that pin (the mutant) the leak appears."""

from __future__ import annotations

import copy

import pytest
import torch

from dpaudit.trainers import bank as bank_module
from dpaudit.trainers.classifier import BankedClassifier

from tests.trainers._vision_tiny import tiny_backbone


def _example0_grads(clf, batch: torch.Tensor) -> list[torch.Tensor]:
    """Per-sample gradients of example 0 (every slot), in a batch whose other examples are ``batch[1:]``."""
    clf.backbone.train(True)  # the training loop with dropout on: what train mode would do to BatchNorm
    y = torch.tensor([0, 1, 2, 0])
    out = clf(batch, None, torch.zeros(len(batch), dtype=torch.long))
    torch.nn.functional.cross_entropy(out, y[: len(batch)], reduction="sum").backward()
    grads = [s.per_sample[0].detach().clone() for s in clf.slots]
    clf.bank.release()
    return grads


def _leaks(clf) -> bool:
    torch.manual_seed(0)
    batch = torch.randn(4, 1, 16, 16, dtype=torch.float64)
    other = batch.clone()
    other[1] = 5.0 * torch.randn(1, 16, 16, dtype=torch.float64)  # only example 1 changes
    a, b = _example0_grads(clf, batch), _example0_grads(clf, other)
    return any(not torch.allclose(x, y, rtol=1e-9, atol=1e-12) for x, y in zip(a, b))


@pytest.fixture()
def resnet():
    return tiny_backbone("resnet", seed=2).double()


def test_dpaudit_batchnorm_keeps_examples_independent(resnet):
    clf = BankedClassifier.from_backbone(copy.deepcopy(resnet), num_models=1, num_labels=3).double()
    assert not _leaks(clf)


def test_train_mode_batchnorm_would_leak_across_examples(resnet, monkeypatch):
    monkeypatch.setattr(bank_module, "freeze_batchnorm", lambda module: [])  # the mutant: BatchNorm not pinned
    clf = BankedClassifier.from_backbone(copy.deepcopy(resnet), num_models=1, num_labels=3).double()
    assert _leaks(clf)
