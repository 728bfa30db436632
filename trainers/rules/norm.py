"""Normalisation layers.

* ``LayerNorm`` (and ``RMSNorm`` subclasses that carry a bias): output ``(B, ..., p)``, bias on the last
  dimension;
* ``GroupNorm``: output ``(B, C, ...)``, bias per channel (dimension 1);
* ``BatchNorm1d/2d/3d``: output ``(B, C, ...)``, bias per channel (dimension 1) — valid only with frozen
  running statistics, which :func:`trainers.batchnorm.freeze_batchnorm` enforces (the BiasBank calls it);
* Hugging Face ``ConvNextLayerNorm`` (ConvNeXt, a LayerNorm subclass): bias on dimension 1 for
  ``data_format="channels_first"`` (its output is ``(B, C, H, W)``), else on the last dimension.

Every forward accepts ``bias=None`` (``F.layer_norm`` / ``F.group_norm`` / ``F.batch_norm``; ConvNeXt's
calls ``LayerNorm.forward``), so stripping sets it to None.
"""

from __future__ import annotations

from torch import nn

from dpaudit.trainers.rules.registry import register_bias_rule

register_bias_rule(nn.LayerNorm, channel_dim=-1)
register_bias_rule(nn.GroupNorm, channel_dim=1)
register_bias_rule((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), channel_dim=1)


def _convnext_layout(module: nn.Module) -> int:
    return 1 if getattr(module, "data_format", "channels_last") == "channels_first" else -1


def _register_hf_layernorms() -> None:
    try:
        from transformers.models.convnext.modeling_convnext import ConvNextLayerNorm
    except ImportError:  # an older transformers without ConvNeXt: nothing to register
        return
    register_bias_rule(ConvNextLayerNorm, channel_dim=-1, layout=_convnext_layout)


_register_hf_layernorms()
