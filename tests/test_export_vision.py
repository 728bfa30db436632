"""Export of image classifiers: trained tables written into ``*ForImageClassification`` reproduce dpaudit's
logits on every supported family, and a wrong bias is caught by the logit check."""

from __future__ import annotations

import pytest
import torch

from dpaudit.errors import CheckpointError
from dpaudit.export_vision import build_exported_vision, check_vision_logits
from dpaudit.trainers.classifier import BankedClassifier
from dpaudit.vision_models import load_vision_backbone

from tests.trainers._vision_tiny import FAMILIES, tiny_config

META = {"label_names": ["a", "b", "c"], "pooling": "mean", "exclude_modules": ["pooler"], "image_shape": [16, 16, 1]}


def _tables(model_dir) -> dict:
    backbone, _, _ = load_vision_backbone(model_dir)
    clf = BankedClassifier.from_backbone(backbone, num_models=1, num_labels=3)
    torch.manual_seed(1)
    with torch.no_grad():
        for s in clf.slots:
            s.param.add_(0.2 * torch.randn_like(s.param))
    return {k: v.clone() for k, v in clf.trainable_state().items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_exported_image_classifier_matches_dpaudit(tmp_path, family):
    from transformers import AutoModelForImageClassification

    torch.manual_seed(0)
    AutoModelForImageClassification.from_config(tiny_config(family)).save_pretrained(tmp_path)
    tables = _tables(tmp_path)
    hf, _ = build_exported_vision(tmp_path, tables, META)
    assert check_vision_logits(hf, tmp_path, tables, META, 1e-5) <= 1e-5
    name = next(k for k in tables if not k.startswith("head."))
    with torch.no_grad():
        bias = hf.base_model.get_submodule(name).bias
        bias.add_(torch.randn_like(bias))  # the mutant: one bias not written as trained
    with pytest.raises(CheckpointError, match="differ"):
        check_vision_logits(hf, tmp_path, tables, META, 1e-5)
