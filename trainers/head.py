"""Mean pooling and the banked linear task head.

The head of model k is ``logits = W[k] h + b[k]`` with ``W`` (K, C, H), ``b`` (K, C) and ``h`` (B, H) the
mean of the last hidden states over non-padding tokens. Its per-sample gradients are
``∂W_i = G_i h_iᵀ`` (C, H) and ``∂b_i = G_i`` (C,) with ``G`` (B, C) the logits' gradient; the squared norm
``‖∂W_i‖² + ‖∂b_i‖² = ‖G_i‖²(‖h_i‖² + 1)`` is added without materialising the outer product. The head is
the only trainable part whose rule reads its input (the pooled feature, B×H floats).
"""

from __future__ import annotations

import torch
from torch import nn

from dpaudit.trainers.bank import BiasBank, Slot


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` (B, T, H) over positions where ``attention_mask`` (B, T) is 1 → (B, H)."""
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


class _BankedLinearHead(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, head: "BankedHead"):
        bank = head.bank
        m = bank.model_index
        hf = h.to(weight.dtype)
        logits = torch.einsum("bh,bch->bc", hf, weight.index_select(0, m)) + bias.index_select(0, m)
        ctx.save_for_backward(hf, m)
        ctx.head, ctx.in_dtype = head, h.dtype
        return logits

    @staticmethod
    def backward(ctx, grad_logits):
        h, m = ctx.saved_tensors
        head: BankedHead = ctx.head
        g = grad_logits.to(h.dtype)
        grad_h = torch.einsum("bc,bch->bh", g, head.weight.index_select(0, m))
        head.weight_slot.per_sample = g.unsqueeze(2) * h.unsqueeze(1)
        head.bias_slot.per_sample = g
        gsq = g.square().sum(1)
        sq = head.bank.sqnorm
        sq[head.weight_slot.group].add_(gsq * h.square().sum(1))
        sq[head.bias_slot.group].add_(gsq)
        return grad_h.to(ctx.in_dtype), None, None, None


class BankedHead(nn.Module):
    """K linear heads (zero-initialised) on the pooled feature, registered as slots of ``bank``."""

    def __init__(self, bank: BiasBank, hidden_size: int, num_labels: int) -> None:
        super().__init__()
        k = bank.num_models
        object.__setattr__(self, "_bank", bank)  # not a submodule: the classifier owns the bank
        self.weight = nn.Parameter(torch.zeros(k, num_labels, hidden_size))
        self.bias = nn.Parameter(torch.zeros(k, num_labels))
        self.weight_slot = Slot(name="head.weight", param=self.weight)
        self.bias_slot = Slot(name="head.bias", param=self.bias)
        bank.extra_slots.extend([self.weight_slot, self.bias_slot])

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return _BankedLinearHead.apply(pooled, self.weight, self.bias, self)

    @property
    def bank(self) -> BiasBank:
        return self._bank
