"""Linear layers: ``torch.nn.Linear`` and Hugging Face ``Conv1D`` (GPT-2 style, weight stored transposed).

Output ``(B, ..., p)``; the bias broadcasts over the last dimension, so ``g_i = Σ_t G_i[t, :]``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D

from dpaudit.trainers.rules.registry import register_bias_rule


def _strip_conv1d(module: nn.Module) -> None:
    # Conv1D.forward calls torch.addmm(self.bias, ...): it cannot take None, so the bias becomes a
    # frozen zero buffer (addmm's beta·bias term costs nothing extra).
    zeros = torch.zeros_like(module.bias, requires_grad=False)
    del module.bias
    module.register_buffer("bias", zeros, persistent=False)


register_bias_rule(nn.Linear, channel_dim=-1)
register_bias_rule(Conv1D, channel_dim=-1, strip=_strip_conv1d)
