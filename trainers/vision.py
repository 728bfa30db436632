"""Backbone + BiasBank + image feature + banked head: K image classifiers in one module.

``forward(pixel_values, attention_mask, model_index) -> logits (B, C)`` — the signature of
:class:`~trainers.classifier.BankedClassifier`, so the training loop and batched prediction drive both;
``pixel_values`` is (B, C, H, W) float (:class:`~trainers.image_batching.EncodedImages`), the mask is unused
(None). Built from a Hugging Face vision backbone (``AutoModel`` of a ViT/DeiT, ConvNeXt, ResNet, … checkpoint).

The head's input, stated per family (:func:`feature_kind`):

* ``"cls"`` — transformer families (ViT, DeiT, BEiT, DINOv2, ViT-MSN, Data2Vec-vision): the CLS token of the
  last hidden state, which these models return after their final LayerNorm; its size is
  ``config.hidden_size``. With ``model.pooling = "pooler"``: the backbone's pooler output instead
  (ViT: ``tanh(W h_CLS + b)``).
* ``"pooled"`` — convolutional families (ConvNeXt, ResNet, RegNet, …): ``pooler_output`` flattened (ConvNeXt:
  LayerNorm of the spatial mean; ResNet: the spatial mean); its size is ``config.hidden_sizes[-1]``.

Every BatchNorm of the backbone is pinned in eval mode by the BiasBank (:mod:`trainers.batchnorm`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dpaudit.errors import ModelError
from dpaudit.trainers.bank import BiasBank
from dpaudit.trainers.classifier import BankedClassifier
from dpaudit.trainers.head import BankedHead

#: ``model_type`` of the transformer families whose feature is the CLS token of the last hidden state.
CLS_FAMILIES = frozenset({"vit", "deit", "beit", "dinov2", "vit_msn", "data2vec-vision", "dinov2_with_registers"})


def is_vision_backbone(backbone: nn.Module) -> bool:
    """Whether ``backbone`` reads images (a Hugging Face model whose main input is ``pixel_values``)."""
    return getattr(backbone, "main_input_name", None) == "pixel_values"


def feature_kind(config) -> str:
    """``"cls"`` or ``"pooled"`` for a vision config (see the module docstring)."""
    return "cls" if getattr(config, "model_type", "") in CLS_FAMILIES else "pooled"


def feature_size(config) -> int:
    """The size of the head's input: ``hidden_size`` ("cls") or ``hidden_sizes[-1]`` ("pooled")."""
    if feature_kind(config) == "cls":
        size = getattr(config, "hidden_size", None)
    else:
        sizes = getattr(config, "hidden_sizes", None)
        size = sizes[-1] if isinstance(sizes, (list, tuple)) and sizes else None
    if not isinstance(size, int) or size < 1:
        raise ModelError(f"vision model of type '{getattr(config, 'model_type', '?')}' states no feature size "
                         f"(hidden_size / hidden_sizes); dpaudit supports ViT/DeiT-style and ConvNeXt/ResNet-style "
                         f"backbones.")
    return size


class BankedVisionClassifier(BankedClassifier):
    """K image classifiers on one frozen vision backbone (see the module docstring)."""

    @classmethod
    def from_backbone(cls, backbone: nn.Module, *, num_models: int, num_labels: int,
                      exclude_modules: Sequence[str] = ("pooler",), add_missing_biases: bool = False,
                      pooling: str = "mean") -> "BankedVisionClassifier":
        """Freeze ``backbone`` (BatchNorm pinned in eval mode), bank its biases and add K zero heads.

        Raises:
            ModelError: ``pooling="pooler"`` on a CLS family without a pooler; no stated feature size.
        """
        if pooling not in ("mean", "pooler"):
            raise ValueError(f"pooling must be 'mean' or 'pooler', got {pooling!r}.")
        kind = feature_kind(backbone.config)
        if pooling == "pooler" and kind == "cls" and getattr(backbone, "pooler", None) is None:
            raise ModelError(f"model.pooling = 'pooler' needs a backbone with a pooler; {type(backbone).__name__} "
                             f"has none — use model.pooling = 'mean' (the CLS token).")
        size = feature_size(backbone.config)
        bank = BiasBank(backbone, num_models=num_models, exclude_modules=exclude_modules,
                        add_missing_biases=add_missing_biases)
        head = BankedHead(bank, size, num_labels)
        device = next(backbone.parameters()).device
        return cls(backbone, bank, head, pooling).to(device)

    def forward(self, pixel_values: torch.Tensor, attention_mask: torch.Tensor | None, model_index: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        with self.bank.use(model_index):
            out = self.backbone(pixel_values=pixel_values)
            return self.head(image_features(out, self.backbone.config, self.pooling))


def image_features(out, config, pooling: str = "mean") -> torch.Tensor:
    """The head's input (B, H) from a vision backbone's output (see the module docstring)."""
    if feature_kind(config) == "cls" and pooling != "pooler":
        return out.last_hidden_state[:, 0]
    if out.pooler_output is None:
        raise ModelError(f"vision model of type '{config.model_type}' returned no pooler_output; load it with its "
                         f"pooling layer (AutoModel does by default).")
    return out.pooler_output.flatten(1)
