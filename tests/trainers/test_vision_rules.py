"""Vision backbones under the BiasBank: per-sample gradients against a per-example autograd loop on each
family (ViT, ConvNeXt, ResNet; float64, rel ≤ 1e-6), BatchNorm's running statistics frozen, ConvNeXt's
channels-first LayerNorm, and image preprocessing."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from dpaudit.errors import DataError, UnsupportedModuleError
from dpaudit.trainers.classifier import BankedClassifier
from dpaudit.trainers.image_batching import ImagePreprocessor, match_channels
from dpaudit.trainers.per_sample import PerSampleHooks
from dpaudit.trainers.vision import BankedVisionClassifier, image_features

from tests.trainers._vision_tiny import FAMILIES, random_pixels, tiny_backbone


pytestmark = pytest.mark.usefixtures("float64")  # tests/conftest.py


def _reference_grads(base, state, pixels, y, k, excluded=("pooler",)):
    """One example alone through a vanilla copy of ``base`` with model k's biases and head: autograd grads."""
    ref = copy.deepcopy(base).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    biases = {}
    for name, mod in ref.named_modules():
        if name in state and not name.startswith(excluded):
            mod.bias = nn.Parameter(state[name][k].clone().view_as(mod.bias))
            biases[name] = mod.bias
    w = state["head.weight"][k].clone().requires_grad_(True)
    hb = state["head.bias"][k].clone().requires_grad_(True)
    feats = image_features(ref(pixel_values=pixels), ref.config)
    nn.functional.cross_entropy(feats @ w.T + hb, y, reduction="sum").backward()
    return {**{n: b.grad for n, b in biases.items()}, "head.weight": w.grad, "head.bias": hb.grad}


@pytest.mark.parametrize("family", FAMILIES)
def test_banked_vision_classifier_matches_per_example_loop(family):
    base = tiny_backbone(family, seed=3)
    clf = BankedClassifier.from_backbone(copy.deepcopy(base), num_models=2, num_labels=3)
    assert isinstance(clf, BankedVisionClassifier)
    with torch.no_grad():
        for s in clf.slots:
            s.param.add_(0.1 * torch.randn_like(s.param))
    b = 4
    x = torch.randn(b, 1, 16, 16)
    m = torch.tensor([0, 1, 1, 0])
    y = torch.tensor([0, 2, 1, 2])
    clf.backbone.train(True)  # the loop's dropout=True: BatchNorm must still use its running statistics
    nn.functional.cross_entropy(clf(x, None, m), y, reduction="sum").backward()
    state = clf.trainable_state()
    kinds = {type(mod).__name__ for mod in clf.backbone.modules()}
    assert {"vit": "Conv2d", "convnext": "ConvNextLayerNorm", "resnet": "BatchNorm2d"}[family] in kinds
    for i in range(b):
        ref = _reference_grads(base, state, x[i : i + 1], y[i : i + 1], int(m[i]))
        for s in clf.slots:
            torch.testing.assert_close(s.per_sample[i], ref[s.name].reshape(s.per_sample[i].shape), rtol=1e-6,
                                       atol=1e-10)
        expected = sum(g.square().sum() for g in ref.values())
        torch.testing.assert_close(clf.bank.sqnorm[0, i], expected, rtol=1e-6, atol=1e-12)


def test_batchnorm_running_statistics_stay_frozen_through_training():
    base = tiny_backbone("resnet", seed=1)
    clf = BankedClassifier.from_backbone(copy.deepcopy(base), num_models=1, num_labels=3)
    bns = [mod for mod in clf.backbone.modules() if isinstance(mod, nn.BatchNorm2d)]
    before = [(bn.running_mean.clone(), bn.running_var.clone(), int(bn.num_batches_tracked)) for bn in bns]
    clf.backbone.train(True)
    for _ in range(2):
        out = clf(torch.randn(5, 1, 16, 16) * 3 + 1, None, torch.zeros(5, dtype=torch.long))
        out.sum().backward()
        clf.bank.release()
    assert bns and all(not bn.training for bn in bns)
    for bn, (mean, var, tracked) in zip(bns, before):
        assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
        assert int(bn.num_batches_tracked) == tracked


def test_batchnorm_without_running_statistics_is_refused():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, track_running_stats=False))
    from dpaudit.trainers.bank import BiasBank

    with pytest.raises(UnsupportedModuleError, match="track_running_stats=False"):
        BiasBank(net, num_models=1)


def test_per_sample_hooks_refuse_train_mode_batchnorm():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 2))
    for n, p in net.named_parameters():
        p.requires_grad = "bias" in n or n.startswith("3.")
    PerSampleHooks(net)
    with pytest.raises(UnsupportedModuleError, match="train mode"):
        net.train()(torch.randn(3, 1, 6, 6))
    net.eval()(torch.randn(3, 1, 6, 6)).sum().backward()  # eval mode: accepted


def test_channel_matching_and_default_preprocessing():
    grey = random_pixels(3, size=8, channels=1)
    assert match_channels(grey, 3).shape == (3, 8, 8, 3)
    rgb = np.zeros((1, 2, 2, 3), dtype=np.uint8)
    rgb[..., 0] = 255
    assert int(match_channels(rgb, 1)[0, 0, 0, 0]) == 76  # 0.299 · 255
    with pytest.raises(DataError, match="channels"):
        match_channels(np.zeros((1, 2, 2, 4), dtype=np.uint8), 3)

    class _DS:
        pixels = grey

    enc = ImagePreprocessor(num_channels=1, image_size=16).encode(_DS())
    assert enc.pixel_values.shape == (3, 1, 16, 16) and enc.pixel_values.dtype == torch.float32
    same = ImagePreprocessor(num_channels=1, image_size=None).encode(_DS()).pixel_values
    torch.testing.assert_close(same, torch.from_numpy(grey).permute(0, 3, 1, 2).float() / 127.5 - 1.0)
    x, mask = enc.collate(np.array([2, 0]), torch.device("cpu"))
    assert mask is None and torch.equal(x, enc.pixel_values[[2, 0]]) and enc.lengths.tolist() == [0, 0, 0]


@pytest.mark.parametrize("family", ["convnext", "resnet"])
def test_per_sample_hooks_on_an_image_classifier_match_per_example_loop(family):
    """A user's own ``*ForImageClassification`` (make_private's path): biases + classifier trainable; ResNet's
    BatchNorm pinned by freeze_batchnorm; per-sample gradients = a per-example loop."""
    from transformers import AutoModelForImageClassification

    from dpaudit.trainers.batchnorm import freeze_batchnorm
    from tests.trainers._vision_tiny import tiny_config

    torch.manual_seed(4)
    model = AutoModelForImageClassification.from_config(tiny_config(family)).double()
    for n, p in model.named_parameters():
        p.requires_grad = n.endswith("bias") or n.startswith("classifier")
    freeze_batchnorm(model)
    ref = copy.deepcopy(model).eval()
    hooks = PerSampleHooks(model, loss_reduction="sum")
    x, y = torch.randn(3, 1, 16, 16), torch.tensor([0, 2, 1])
    model.train()
    nn.functional.cross_entropy(model(pixel_values=x).logits, y, reduction="sum").backward()
    for i in range(3):
        ref.zero_grad()
        nn.functional.cross_entropy(ref(pixel_values=x[i : i + 1]).logits, y[i : i + 1], reduction="sum").backward()
        grads = dict(ref.named_parameters())
        for t in hooks.tracked:
            torch.testing.assert_close(t.per_sample[i], grads[t.name].grad, rtol=1e-6, atol=1e-10)
