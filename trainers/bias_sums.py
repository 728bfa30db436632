"""Per-sample bias gradients from output gradients: the torch (CPU and reference) path.

For a layer with output gradient ``G`` of shape ``(B, *rest)`` and a bias on ``channel_dim``:
``g[i, c] = Σ_{all other positions} G[i, ..., c, ...]`` — shape ``(B, p)``, accumulated in float32
whatever the dtype of ``G`` (bf16/fp16 under autocast). :func:`rowsum_sqnorm` also adds
``‖g_i‖²`` into a per-sample float32 accumulator; :func:`scaled_bank_sum` applies per-sample clip
factors and sums rows into their BiasBank model row. :mod:`trainers.fused` provides the same three
functions as fused GPU kernels; :func:`backend` picks one.
"""

from __future__ import annotations

import os

import torch


def per_sample_bias_sums(grad_output: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """``(B, p)`` sums of ``grad_output`` over every dimension except batch and ``channel_dim``.

    Accumulates in float32, or float64 when ``grad_output`` is float64 (the reference tests).
    """
    b = grad_output.shape[0]
    acc = torch.promote_types(grad_output.dtype, torch.float32)
    if channel_dim == -1:
        p = grad_output.shape[-1]
        if b == 0:
            return grad_output.new_zeros((0, p), dtype=acc)
        g = grad_output.reshape(b, -1, p)
        return g.sum(dim=1, dtype=acc)
    p = grad_output.shape[1]
    if b == 0:
        return grad_output.new_zeros((0, p), dtype=acc)
    g = grad_output.reshape(b, p, -1)
    return g.sum(dim=2, dtype=acc)


def rowsum_sqnorm(grad_output: torch.Tensor, channel_dim: int, sqnorm_out: torch.Tensor) -> torch.Tensor:
    """Per-sample sums ``g`` (B, p) float32, and ``sqnorm_out += Σ_c g[:, c]²`` in place (B,) float32."""
    g = per_sample_bias_sums(grad_output, channel_dim)
    sqnorm_out.add_(g.square().sum(dim=1))
    return g


def scaled_bank_sum(per_sample: torch.Tensor, scale: torch.Tensor, model_index: torch.Tensor,
                    out: torch.Tensor) -> None:
    """``out[m_i] += scale_i · per_sample[i]`` for every i. Shapes: (B, *s), (B,), (B,) int64, (K, *s)."""
    view = (-1,) + (1,) * (per_sample.dim() - 1)
    out.index_add_(0, model_index, (per_sample * scale.view(view)).to(out.dtype))


class _TorchBackend:
    name = "torch"
    rowsum_sqnorm = staticmethod(rowsum_sqnorm)
    scaled_bank_sum = staticmethod(scaled_bank_sum)


def backend(device: torch.device, *, prefer_fused: bool = True):
    """The kernel set for ``device``: fused Triton kernels on CUDA when available, else the torch path.

    ``DPAUDIT_FUSED=0`` in the environment forces the torch path (benchmarks compare both).
    """
    if prefer_fused and device.type == "cuda" and os.environ.get("DPAUDIT_FUSED", "1") != "0":
        try:
            from dpaudit.trainers import fused
        except ImportError:  # Triton missing: the torch path is exact, only slower.
            return _TorchBackend
        return fused.FusedBackend
    return _TorchBackend
