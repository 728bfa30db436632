"""The embedded vision backbone loads through the real transformers Auto classes and maps the embedded
task's pixels to logits."""

from __future__ import annotations

import numpy as np


def test_backbone_and_processor_load_with_auto_classes_and_run():
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from dpaudit.embedded_vision import embedded_vision_dir

    folder = embedded_vision_dir()
    model = AutoModelForImageClassification.from_pretrained(folder)
    processor = AutoImageProcessor.from_pretrained(folder)
    pixels = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    inputs = processor(list(pixels), return_tensors="pt")
    assert inputs["pixel_values"].shape == (3, 1, 28, 28)
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (3, 5) and torch.isfinite(logits).all()
    assert model.config.num_channels == 1 and sum(p.numel() for p in model.parameters()) < 1_000_000
    assert any(name.endswith("bias") for name, _ in model.named_parameters())


def test_the_shipped_convnext_layernorms_get_their_per_instance_bias_layout():
    """The stem's and downsampling layers' ConvNextLayerNorm run on N×C×H×W (bias on dim 1), the blocks' on
    N×H×W×C (dim −1): the per-layer layout rule must give each its own, or per-sample bias gradients are
    summed over the wrong axis."""
    from dpaudit.models import load_backbone
    from dpaudit.trainers.rules.registry import rule_for

    backbone, _, _ = load_backbone("embedded-vision")
    layouts = [(m.data_format, rule_for(m, n).dim_for(m)) for n, m in backbone.named_modules()
               if type(m).__name__ == "ConvNextLayerNorm"]
    assert sorted(layouts) == [("channels_first", 1)] * 3 + [("channels_last", -1)] * 3
