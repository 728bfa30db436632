"""Normalisation layers.

* ``LayerNorm`` (and ``RMSNorm`` subclasses that carry a bias): output ``(B, ..., p)``, bias on the last
  dimension;
* ``GroupNorm``: output ``(B, C, ...)``, bias per channel (dimension 1).

Both forwards accept ``bias=None`` (``F.layer_norm`` / ``F.group_norm``), so stripping sets it to None.
"""

from __future__ import annotations

from torch import nn

from dpaudit.trainers.rules.registry import register_bias_rule

register_bias_rule(nn.LayerNorm, channel_dim=-1)
register_bias_rule(nn.GroupNorm, channel_dim=1)
