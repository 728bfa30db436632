"""Per-sample bias gradients on the GPU: the two DP-BiTFiT reductions as one Triton kernel each.

Same functions, signatures and results as the torch path in :mod:`trainers.bias_sums` (which
:func:`trainers.bias_sums.backend` picks on CPU or when ``DPAUDIT_FUSED=0``):

* :func:`rowsum_sqnorm` reads a layer's output gradient ``G`` (B, …) **once**, in its own dtype
  (fp32 / bf16 / fp16), and in float32 writes ``g_i = Σ_t G_i[t, :]`` (B, p) and adds ``‖g_i‖²`` into
  ``sqnorm_out[i]``. The torch path needs four kernels and re-reads ``g`` twice for that.
* :func:`scaled_bank_sum` computes ``out[m_i] += c_i · g_i`` (clip factor times per-sample gradient,
  summed into the example's BiasBank row) without materialising ``c_i · g_i``.

Numerics: inputs are widened to float32 on load and every sum runs in float32, as in the torch path;
results agree to float32 rounding (the order of additions differs).

Determinism:

* :func:`scaled_bank_sum` is deterministic: program ``(k, d-block)`` owns ``out[k, d-block]`` and walks
  the batch in order, keeping only rows with ``m_i = k`` — no atomics, so repeated model indices cost
  nothing in reproducibility.
* :func:`rowsum_sqnorm` writes ``g`` deterministically; each ``(i, p-block)`` program adds its share of
  ``‖g_i‖²`` into ``sqnorm_out[i]`` with a float32 atomic add, so the *order* of those few additions
  (⌈p / BLOCK_P⌉ per sample) may change between runs (last-bit differences). Under
  ``torch.use_deterministic_algorithms(True)``, or when ``sqnorm_out`` is not float32, the kernel
  stores the partial sums instead and one small torch reduction adds them in a fixed order.

Layouts: ``G`` is handled through its strides, with no copy, whenever it can be viewed as
``(B, R, p)`` (``channel_dim=-1``) or ``(B, p, R)`` (``channel_dim=1``) — contiguous tensors, batch
slices, expanded (stride-0) gradients, channels-last/permuted 3-D tensors. Only a tensor that cannot
be viewed that way (e.g. a permuted 4-D tensor whose middle dimensions do not merge) is copied once
by ``reshape``; :func:`scaled_bank_sum` likewise copies ``per_sample`` only when it cannot be viewed as
``(B, D)``.

Running without a GPU: the kernels run on CPU tensors under Triton's interpreter
(``TRITON_INTERPRET=1`` set before ``triton`` is imported); the tests use that to check them.
Importing this module needs ``triton`` (the ``gpu`` extra); :func:`trainers.bias_sums.backend` falls
back to the torch path when it is missing.
"""

from __future__ import annotations

import functools
import os

import torch
import triton
import triton.language as tl

__all__ = ["FusedBackend", "rowsum_sqnorm", "scaled_bank_sum"]

_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
_TILE = 4096  # elements per loaded tile: 32 per thread at 4 warps (acc stays in registers)
_MIN_BLOCK = 16


@triton.jit
def _rowsum_sqnorm_kernel(
    g_ptr, out_ptr, sq_ptr, R, P, stride_b, stride_r, stride_p, stride_sq, n_pblocks,
    BLOCK_R: tl.constexpr, BLOCK_P: tl.constexpr, ATOMIC: tl.constexpr,
):
    # Program (i, j): sample i, channels [j·BLOCK_P, (j+1)·BLOCK_P). Loops over the R reduced positions.
    pid_b = tl.program_id(0)
    pid_p = tl.program_id(1)
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    p_mask = offs_p < P
    base = g_ptr + pid_b.to(tl.int64) * stride_b
    acc = tl.zeros((BLOCK_R, BLOCK_P), dtype=tl.float32)
    for r0 in range(0, R, BLOCK_R):
        offs_r = r0 + tl.arange(0, BLOCK_R)
        mask = (offs_r[:, None] < R) & p_mask[None, :]
        ptrs = base + offs_r[:, None] * stride_r + offs_p[None, :] * stride_p
        acc += tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)
    g = tl.sum(acc, axis=0)  # (BLOCK_P,), zero on masked channels
    tl.store(out_ptr + pid_b.to(tl.int64) * P + offs_p, g, mask=p_mask)
    part = tl.sum(g * g, axis=0)
    if ATOMIC:
        tl.atomic_add(sq_ptr + pid_b.to(tl.int64) * stride_sq, part)
    else:
        tl.store(sq_ptr + pid_b.to(tl.int64) * n_pblocks + pid_p, part)


@triton.jit
def _scaled_bank_sum_kernel(
    x_ptr, scale_ptr, index_ptr, out_ptr, B, D,
    stride_xb, stride_xd, stride_s, stride_i, stride_ok, stride_od,
    BLOCK_B: tl.constexpr, BLOCK_D: tl.constexpr,
):
    # Program (k, j): bank row k, columns [j·BLOCK_D, (j+1)·BLOCK_D). Sums the rows with m_i = k, in order.
    k = tl.program_id(0)
    pid_d = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    d_mask = offs_d < D
    acc = tl.zeros((BLOCK_B, BLOCK_D), dtype=tl.float32)
    for b0 in range(0, B, BLOCK_B):
        offs_b = b0 + tl.arange(0, BLOCK_B)
        b_mask = offs_b < B
        m = tl.load(index_ptr + offs_b * stride_i, mask=b_mask, other=-1)
        sel = b_mask & (m == k)
        s = tl.load(scale_ptr + offs_b * stride_s, mask=sel, other=0.0).to(tl.float32)
        ptrs = x_ptr + offs_b[:, None].to(tl.int64) * stride_xb + offs_d[None, :] * stride_xd
        x = tl.load(ptrs, mask=sel[:, None] & d_mask[None, :], other=0.0).to(tl.float32)
        acc += x * s[:, None]
    total = tl.sum(acc, axis=0)
    optrs = out_ptr + k.to(tl.int64) * stride_ok + offs_d * stride_od
    cur = tl.load(optrs, mask=d_mask, other=0.0)
    tl.store(optrs, cur + total, mask=d_mask)


def _pow2(n: int) -> int:
    return triton.next_power_of_2(max(int(n), 1))


@functools.lru_cache(maxsize=None)
def _target_programs(device_index: int | None) -> int:
    """Programs wanted per launch: 4 waves on the GPU's SMs (≈528 on an H100); 1 under the interpreter."""
    if device_index is None:
        return 1
    return 4 * torch.cuda.get_device_properties(device_index).multi_processor_count


@functools.lru_cache(maxsize=4096)
def _rowsum_blocks(b: int, r: int, p: int, channel_contiguous: bool, target: int) -> tuple[int, int, int]:
    """``(BLOCK_R, BLOCK_P, num_warps)`` for a (B, R, p) reduction over R.

    Features-last (channels contiguous, e.g. BERT (B, T, 768)): BLOCK_P up to 128 (512 B of fp32 per
    row), halved down to 32 until B·⌈p/BLOCK_P⌉ fills ``target`` programs (B=32, p=768 → 32 → 768
    programs), and BLOCK_R so that a tile is ~4K elements. Channels-first (positions contiguous, e.g.
    conv (B, C, H·W)): BLOCK_R up to 256 along the contiguous positions, BLOCK_P fills the tile, halved
    (down to 4) for occupancy the same way.
    """
    if channel_contiguous:
        block_p = min(128, max(_MIN_BLOCK, _pow2(p)))
        while block_p > 32 and b * triton.cdiv(p, block_p) < target:
            block_p //= 2
        block_r = min(max(_MIN_BLOCK, _pow2(r)), max(_MIN_BLOCK, _TILE // block_p))
    else:
        block_r = min(256, max(_MIN_BLOCK, _pow2(r)))
        block_p = min(max(_MIN_BLOCK, _pow2(p)), max(_MIN_BLOCK, _TILE // block_r))
        while block_p > 4 and b * triton.cdiv(p, block_p) < target:  # few channels, many positions
            block_p //= 2
    warps = 8 if block_r * block_p >= 2 * _TILE else 4
    return block_r, block_p, warps


@functools.lru_cache(maxsize=4096)
def _bank_blocks(k: int, b: int, d: int, target: int) -> tuple[int, int, int]:
    """``(BLOCK_B, BLOCK_D, num_warps)``: BLOCK_D from 256 down to 32 until K·⌈D/BLOCK_D⌉ fills ``target``."""
    block_d = min(256, max(_MIN_BLOCK, _pow2(d)))
    while block_d > 32 and k * triton.cdiv(d, block_d) < target:
        block_d //= 2
    block_b = min(max(_MIN_BLOCK, _pow2(b)), max(_MIN_BLOCK, _TILE // block_d))
    return block_b, block_d, 4


def _check_device(t: torch.Tensor) -> int | None:
    if t.is_cuda:
        return t.device.index if t.device.index is not None else torch.cuda.current_device()
    if _INTERPRET:
        return None
    raise RuntimeError(
        f"dpaudit.trainers.fused runs on CUDA tensors (got a {t.device.type} tensor); use "
        f"dpaudit.trainers.bias_sums.backend(device), which picks the torch path off the GPU, or set "
        f"TRITON_INTERPRET=1 before importing triton to run the kernels on CPU."
    )


def _launch(kernel, grid, device_index: int | None, *args, **kwargs) -> None:
    if device_index is None or device_index == torch.cuda.current_device():
        kernel[grid](*args, **kwargs)
    else:
        with torch.cuda.device(device_index):
            kernel[grid](*args, **kwargs)


def rowsum_sqnorm(grad_output: torch.Tensor, channel_dim: int, sqnorm_out: torch.Tensor) -> torch.Tensor:
    """Per-sample sums ``g`` (B, p) float32, and ``sqnorm_out += Σ_c g[:, c]²`` in place (B,) float32.

    Args:
        grad_output: a layer's output gradient of shape (B, *rest), any float dtype.
        channel_dim: ``-1`` (features-last, (B, T…, p)) or ``1`` (channels-first, (B, p, spatial…)).
        sqnorm_out: the (B,) per-sample squared-norm accumulator, updated in place.

    Returns:
        ``g`` of shape (B, p), float32: ``grad_output`` summed over every dimension but batch and channel.
    """
    b = grad_output.shape[0]
    p = grad_output.shape[channel_dim]
    out = torch.empty((b, p), dtype=torch.float32, device=grad_output.device)
    if b == 0 or p == 0:
        return out
    dev = _check_device(grad_output)
    if channel_dim == -1:
        g3 = grad_output.reshape(b, -1, p)  # a view whenever the strides allow; else one copy
        r = g3.shape[1]
        stride_b, stride_r, stride_p = g3.stride()
    else:
        g3 = grad_output.reshape(b, p, -1)
        r = g3.shape[2]
        stride_b, stride_p, stride_r = g3.stride()
    if r == 0:
        out.zero_()
        return out
    block_r, block_p, warps = _rowsum_blocks(b, r, p, stride_p <= stride_r, _target_programs(dev))
    n_pblocks = triton.cdiv(p, block_p)
    atomic = sqnorm_out.dtype == torch.float32 and not torch.are_deterministic_algorithms_enabled()
    sq = sqnorm_out if atomic else torch.empty((b, n_pblocks), dtype=torch.float32, device=out.device)
    stride_sq = sqnorm_out.stride(0) if atomic else n_pblocks
    _launch(_rowsum_sqnorm_kernel, (b, n_pblocks), dev,
            g3, out, sq, r, p, stride_b, stride_r, stride_p, stride_sq, n_pblocks,
            BLOCK_R=block_r, BLOCK_P=block_p, ATOMIC=atomic, num_warps=warps)
    if not atomic:
        sqnorm_out.add_(sq.sum(dim=1))
    return out


def scaled_bank_sum(per_sample: torch.Tensor, scale: torch.Tensor, model_index: torch.Tensor,
                    out: torch.Tensor) -> None:
    """``out[m_i] += scale_i · per_sample[i]`` for every i. Shapes: (B, *s), (B,), (B,) int64, (K, *s).

    ``per_sample`` may be any float dtype; the product and the sum are float32. ``out`` must be float32;
    any other dtype goes through the torch path. Deterministic (see the module docstring). Indices
    outside ``[0, K)`` are not checked (that would cost a device sync) and their rows are dropped; the
    BiasBank only produces valid ones.
    """
    b = per_sample.shape[0]
    k = out.shape[0]
    if b == 0 or k == 0 or out.numel() == 0:
        return
    if out.dtype != torch.float32:
        from dpaudit.trainers.bias_sums import scaled_bank_sum as torch_path

        torch_path(per_sample, scale, model_index, out)
        return
    dev = _check_device(per_sample)
    x = per_sample.reshape(b, -1)
    d = x.shape[1]
    try:
        o = out.view(k, d)
    except RuntimeError:  # `out` cannot be viewed as (K, D): sum into a fresh table, add once
        tmp = torch.zeros((k, d), dtype=torch.float32, device=out.device)
        scaled_bank_sum(per_sample, scale, model_index, tmp)
        out.add_(tmp.view(out.shape))
        return
    block_b, block_d, warps = _bank_blocks(k, b, d, _target_programs(dev))
    _launch(_scaled_bank_sum_kernel, (k, triton.cdiv(d, block_d)), dev,
            x, scale, model_index, o, b, d,
            x.stride(0), x.stride(1), scale.stride(0), model_index.stride(0), o.stride(0), o.stride(1),
            BLOCK_B=block_b, BLOCK_D=block_d, num_warps=warps)


class FusedBackend:
    """The fused Triton kernel set; the same interface as ``trainers.bias_sums._TorchBackend``."""

    name = "fused"
    rowsum_sqnorm = staticmethod(rowsum_sqnorm)
    scaled_bank_sum = staticmethod(scaled_bank_sum)
