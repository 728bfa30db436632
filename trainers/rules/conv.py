"""Convolutions ``Conv1d``/``Conv2d``/``Conv3d``: output ``(B, C_out, *spatial)``, bias per output channel,
``g_i = Σ_{pixels} G_i[:, pixel]``."""

from __future__ import annotations

from torch import nn

from dpaudit.trainers.rules.registry import register_bias_rule

register_bias_rule((nn.Conv1d, nn.Conv2d, nn.Conv3d), channel_dim=1)
