"""Cases for :mod:`trainers.fused` against the torch path (:mod:`trainers.bias_sums`).

Not collected on its own (no ``test_`` prefix): ``test_fused.py`` runs it in a subprocess, on CPU under
Triton's interpreter (``TRITON_INTERPRET=1``, which must be set before ``triton`` is imported — hence
the subprocess) and on CUDA when there is a GPU. Sizes stay small on CPU (the interpreter runs every
program in numpy); BERT-sized cases are added only on CUDA.

Tolerances: ``max|fused − torch| / max|torch|`` ≤ 1e-5 for float32 inputs, ≤ 1e-2 for bf16/fp16 inputs.
"""

from __future__ import annotations

import inspect
import os

import pytest
import torch

triton = pytest.importorskip("triton", reason="triton is not installed (pip install 'dpaudit[gpu]')")

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
if INTERPRET:
    DEVICE = "cpu"
elif torch.cuda.is_available():
    DEVICE = "cuda"
else:
    pytest.skip("needs CUDA, or TRITON_INTERPRET=1 to run the kernels on CPU", allow_module_level=True)

from dpaudit.trainers import bias_sums  # noqa: E402
from dpaudit.trainers.fused import FusedBackend  # noqa: E402

TOL = {torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 1e-2}


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    scale = want.abs().max().item() if want.numel() else 0.0
    return (got - want).abs().max().item() / max(scale, 1e-30) if want.numel() else 0.0


def randn(*shape: int, dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float32).to(dtype=dtype, device=DEVICE)


def check_rowsum(x: torch.Tensor, channel_dim: int, tol: float) -> None:
    b = x.shape[0]
    start = torch.rand(b, generator=torch.Generator().manual_seed(1)).to(DEVICE)  # accumulates, not overwrites
    sq_fused, sq_torch = start.clone(), start.clone()
    got = FusedBackend.rowsum_sqnorm(x, channel_dim, sq_fused)
    want = bias_sums.rowsum_sqnorm(x, channel_dim, sq_torch)
    assert got.dtype == torch.float32 and got.shape == want.shape
    assert rel_err(got, want) <= tol, rel_err(got, want)
    assert rel_err(sq_fused, sq_torch) <= tol, rel_err(sq_fused, sq_torch)


# (shape, channel_dim): odd sizes on purpose (T=1, p=1, p=777, B=1, 2-D/3-D/4-D/5-D).
ROWSUM_SHAPES = [
    ((3, 5, 777), -1),      # p not a multiple of any block
    ((2, 1, 64), -1),       # T = 1
    ((4, 9, 1), -1),        # p = 1
    ((1, 6, 40), -1),       # B = 1
    ((5, 48), -1),          # (B, p): nothing to sum over
    ((2, 3, 4, 33), -1),    # features-last 4-D (B, H, W, p)
    ((3, 7, 5, 6), 1),      # channels-first 4-D (conv2d / GroupNorm)
    ((2, 5, 17), 1),        # channels-first 3-D (conv1d)
    ((2, 3, 2, 3, 4), 1),   # channels-first 5-D (conv3d)
    ((2, 300, 24), -1),     # T spans several BLOCK_R tiles
]
if DEVICE == "cuda":
    ROWSUM_SHAPES += [((32, 128, 768), -1), ((32, 128, 3072), -1), ((64, 512, 768), -1), ((8, 64, 56, 56), 1)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize(("shape", "channel_dim"), ROWSUM_SHAPES, ids=str)
def test_rowsum_sqnorm_matches_torch(shape, channel_dim, dtype):
    check_rowsum(randn(*shape, dtype=dtype), channel_dim, TOL[dtype])


def test_block_sizes_chosen_for_an_h100(monkeypatch):
    # Under the interpreter the heuristics aim at 1 program per launch (big blocks, fast); here they aim
    # at 4 waves of an H100's 132 SMs, so the CPU run also checks the GPU's smaller blocks (BLOCK_P down
    # to 32 features-last / 4 channels-first, BLOCK_D down to 32) on shapes those blocks do not divide.
    from dpaudit.trainers import fused

    monkeypatch.setattr(fused, "_target_programs", lambda device_index: 4 * 132)
    check_rowsum(randn(3, 9, 200), -1, 1e-5)
    check_rowsum(randn(2, 6, 70, 3, dtype=torch.bfloat16), 1, 1e-2)
    check_rowsum(randn(2, 9, 130).transpose(1, 2), -1, 1e-5)
    check_bank(randn(21, 100), _scale(21), _index(21, 3), torch.zeros(3, 100, device=DEVICE))


def test_rowsum_sqnorm_noncontiguous_views():
    # Each of these is read through its strides, without a copy.
    check_rowsum(randn(3, 20, 6).transpose(1, 2), -1, 1e-5)                 # (B, T, p) with stride_p = T
    check_rowsum(randn(6, 7, 10)[::2], -1, 1e-5)                           # batch slice
    check_rowsum(randn(4, 5, 9)[:, 1:4, 2:7], -1, 1e-5)                    # cropped in T and p
    check_rowsum(randn(3, 1, 12).expand(3, 7, 12), -1, 1e-5)                # stride-0 (grad of a .sum())
    nhwc = randn(2, 6, 5, 4).contiguous(memory_format=torch.channels_last)  # conv grads in channels_last
    check_rowsum(nhwc, 1, 1e-5)
    # Not viewable as (B, T, p): reshape copies once; the result is still right.
    check_rowsum(randn(2, 5, 3, 8).permute(0, 2, 1, 3), -1, 1e-5)


def test_rowsum_sqnorm_bank_accumulator_rows():
    # BiasBank passes sqnorm[group], a row of a (G, B) table; also a strided column.
    x = randn(4, 6, 10)
    table_f, table_t = torch.zeros(3, 4, device=DEVICE), torch.zeros(3, 4, device=DEVICE)
    FusedBackend.rowsum_sqnorm(x, -1, table_f[1])
    bias_sums.rowsum_sqnorm(x, -1, table_t[1])
    table2_f, table2_t = torch.zeros(4, 3, device=DEVICE), torch.zeros(4, 3, device=DEVICE)
    FusedBackend.rowsum_sqnorm(x, -1, table2_f[:, 2])
    bias_sums.rowsum_sqnorm(x, -1, table2_t[:, 2])
    assert rel_err(table_f, table_t) <= 1e-5 and rel_err(table2_f, table2_t) <= 1e-5
    assert table_f[0].abs().sum() == 0 and table2_f[:, :2].abs().sum() == 0


def test_rowsum_sqnorm_empty_batch_and_empty_positions():
    sq = torch.ones(0, device=DEVICE)
    g = FusedBackend.rowsum_sqnorm(randn(0, 5, 7), -1, sq)
    assert g.shape == (0, 7) and g.dtype == torch.float32
    sq = torch.ones(2, device=DEVICE)
    g = FusedBackend.rowsum_sqnorm(randn(2, 0, 7), -1, sq)
    assert g.shape == (2, 7) and g.abs().sum() == 0 and torch.equal(sq, torch.ones(2, device=DEVICE))


def test_rowsum_sqnorm_deterministic_mode_uses_no_atomics():
    x = randn(3, 11, 300)
    sq_a, sq_b, sq_ref = (torch.zeros(3, device=DEVICE) for _ in range(3))
    torch.use_deterministic_algorithms(True)
    try:
        ga = FusedBackend.rowsum_sqnorm(x, -1, sq_a)
        gb = FusedBackend.rowsum_sqnorm(x, -1, sq_b)
    finally:
        torch.use_deterministic_algorithms(False)
    bias_sums.rowsum_sqnorm(x, -1, sq_ref)
    assert torch.equal(ga, gb) and torch.equal(sq_a, sq_b)
    assert rel_err(sq_a, sq_ref) <= 1e-5


def check_bank(per_sample, scale, index, out):
    out_t = out.clone()
    FusedBackend.scaled_bank_sum(per_sample, scale, index, out)
    bias_sums.scaled_bank_sum(per_sample, scale, index, out_t)
    tol = TOL[per_sample.dtype]
    assert rel_err(out, out_t) <= tol, rel_err(out, out_t)


def _index(b: int, k: int, seed: int = 2) -> torch.Tensor:
    return torch.randint(0, k, (b,), generator=torch.Generator().manual_seed(seed)).to(DEVICE)


def _scale(b: int, seed: int = 3) -> torch.Tensor:
    return torch.rand(b, generator=torch.Generator().manual_seed(seed)).to(DEVICE)


BANK_CASES = [  # (B, K, per-example shape)
    (40, 16, (7,)),         # K=16 BiasBank, repeated indices
    (5, 1, (777,)),         # K=1 (the ordinary trainer), D not a multiple of the block
    (1, 3, (12,)),          # B = 1
    (9, 2, (3, 10)),        # head weight (C, H)
    (6, 4, ()),             # scalar per example: out is (K,)
    (33, 16, (1,)),         # p = 1
]
if DEVICE == "cuda":
    BANK_CASES += [(512, 16, (768,)), (64, 1, (3072,)), (1024, 16, (2, 768))]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize(("b", "k", "shape"), BANK_CASES, ids=str)
def test_scaled_bank_sum_matches_torch(b, k, shape, dtype):
    out = randn(k, *shape, seed=5)  # accumulates into existing sums
    check_bank(randn(b, *shape, dtype=dtype), _scale(b), _index(b, k), out)


def test_scaled_bank_sum_repeated_and_unused_rows():
    b, k = 24, 16
    index = torch.tensor([3] * 12 + [7] * 11 + [15], device=DEVICE)  # rows 3, 7 repeat; 13 rows unused
    out = torch.zeros(k, 9, device=DEVICE)
    check_bank(randn(b, 9), _scale(b), index, out)
    unused = [r for r in range(k) if r not in (3, 7, 15)]
    assert out[unused].abs().sum() == 0


def test_scaled_bank_sum_strided_inputs_and_output():
    b, k = 10, 4
    check_bank(randn(b, 6, 5).transpose(1, 2), _scale(b), _index(b, k), torch.zeros(k, 5, 6, device=DEVICE))
    factors = torch.rand(b, 3, generator=torch.Generator().manual_seed(4)).to(DEVICE)  # a strided column
    check_bank(randn(b, 8), factors[:, 1], _index(b, k), torch.zeros(k, 8, device=DEVICE))
    # `out` that cannot be viewed as (K, D): summed into a scratch table, then added.
    out = torch.zeros(k, 6, 5, device=DEVICE).transpose(1, 2)
    check_bank(randn(b, 5, 6), _scale(b), _index(b, k), out)


def test_scaled_bank_sum_empty_and_deterministic():
    out = torch.ones(3, 4, device=DEVICE)
    FusedBackend.scaled_bank_sum(randn(0, 4), _scale(0), _index(0, 3), out)
    assert torch.equal(out, torch.ones(3, 4, device=DEVICE))
    x, s, m = randn(64, 100), _scale(64), _index(64, 5)
    a, c = torch.zeros(5, 100, device=DEVICE), torch.zeros(5, 100, device=DEVICE)
    FusedBackend.scaled_bank_sum(x, s, m, a)
    FusedBackend.scaled_bank_sum(x, s, m, c)
    assert torch.equal(a, c)


def test_interface_matches_torch_path():
    assert FusedBackend.name == "fused"
    for fn in ("rowsum_sqnorm", "scaled_bank_sum"):
        assert inspect.signature(getattr(FusedBackend, fn)) == inspect.signature(getattr(bias_sums, fn))


if DEVICE == "cuda":  # defined only there, so the interpreter run has no skips to hide behind

    def test_backend_picks_fused_on_cuda(monkeypatch):
        assert bias_sums.backend(torch.device("cuda")) is FusedBackend
        monkeypatch.setenv("DPAUDIT_FUSED", "0")
        assert bias_sums.backend(torch.device("cuda")).name == "torch"
