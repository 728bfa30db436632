"""Tiny random-weight Hugging Face vision backbones (ViT, ConvNeXt, ResNet) and random images for the tests."""

from __future__ import annotations

import numpy as np
import torch
from transformers import (ConvNextConfig, ConvNextModel, ResNetConfig, ResNetModel, ViTConfig,
                          ViTForImageClassification, ViTModel)

FAMILIES = ("vit", "convnext", "resnet")


def tiny_config(family: str, channels: int = 1, image_size: int = 16):
    if family == "vit":
        return ViTConfig(image_size=image_size, patch_size=4, num_channels=channels, hidden_size=16,
                         num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0, num_labels=3)
    if family == "convnext":
        return ConvNextConfig(num_channels=channels, num_stages=2, patch_size=2, hidden_sizes=[8, 16], depths=[1, 1],
                              image_size=image_size, num_labels=3)
    if family == "resnet":
        return ResNetConfig(num_channels=channels, embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1],
                            layer_type="basic", num_labels=3)
    raise ValueError(family)


def tiny_backbone(family: str, seed: int = 0, channels: int = 1, image_size: int = 16):
    """A random backbone (eval mode); ResNet's BatchNorm running statistics are made non-trivial."""
    torch.manual_seed(seed)
    cfg = tiny_config(family, channels, image_size)
    model = {"vit": ViTModel, "convnext": ConvNextModel, "resnet": ResNetModel}[family](cfg)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0.0, 0.3)
                mod.running_var.uniform_(0.5, 2.0)
                mod.bias.normal_(0.0, 0.1)
    return model.eval()


def save_tiny_vit(path, *, channels: int = 1, image_size: int = 16, with_processor: bool = True, seed: int = 0):
    """Save a tiny ``ViTForImageClassification`` (+ a grey preprocessor_config.json) to ``path``."""
    torch.manual_seed(seed)
    model = ViTForImageClassification(tiny_config("vit", channels, image_size))
    model.save_pretrained(path)
    if with_processor:
        from transformers import ViTImageProcessor

        ViTImageProcessor(size={"height": image_size, "width": image_size}, image_mean=[0.5] * channels,
                          image_std=[0.5] * channels).save_pretrained(path)
    return path


def random_pixels(n: int, size: int = 16, channels: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, channels), dtype=np.uint8)
