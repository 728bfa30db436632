"""Clipping and noise for a BiasBank (docs/design.md, "DP-BiTFiT, exactly").

Per micro-batch, after ``loss.backward()`` (loss summed over examples):

* clipping groups g with thresholds ``C_g`` (all-layer: one group with ``C``; layer-wise: one group per
  table with ``C/√G`` each; named groups: user thresholds); per-sample group norm ``n_ig`` comes from the
  bank's squared-norm accumulators;
* clip factor ``c_ig = min(1, C_g / n_ig)`` (Abadi et al. 2016, arXiv 1607.00133 v2, Alg. 1) or
  ``C_g / (n_ig + 0.01)`` (automatic clipping, Bu et al. 2022, arXiv 2206.07136 v3, Eq. 4.3);
* ``sum[m_i] += c_ig g_i`` for every table in group g (``scaled_bank_sum``).

Per logical batch, :meth:`DPAggregator.finalize` sets each table's gradient row k to
``(sum[k] + N(0, σ² C_tot² I)) / (q · N_k)`` with ``C_tot = sqrt(Σ_g C_g²)`` — the L2 sensitivity of the
concatenated clipped gradient, so isotropic noise at ``σ·C_tot`` gives the privacy of noise multiplier σ
(the same rule as opacus' per-layer clipping). Noise for row k comes from that model's own
:class:`~trainers.randomness.RandomSource`: the OS CSPRNG for a model that can be released, or a seeded
stream (tests, benchmarks, shadows) under which row k of a bank equals a single-model run with the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from dpaudit.clipping import CLIPPING_MODES, CLIPPING_STYLES, ClippingConfig
from dpaudit.distributed import SINGLE, Collective
from dpaudit.trainers.bias_sums import backend as kernel_backend
from dpaudit.trainers.classifier import BankedClassifier
from dpaudit.trainers.randomness import RandomSource

# The clipping settings are defined once, in dpaudit.clipping; re-exported here because the trainer's
# callers (TrainSettings, benchmarks, tests) build them next to the DPAggregator that uses them.
__all__ = ["CLIPPING_MODES", "CLIPPING_STYLES", "ClippingConfig", "DPAggregator", "clip_factors"]


def clip_factors(norms: torch.Tensor, threshold: torch.Tensor | float, style: str) -> torch.Tensor:
    """Per-sample clip factors for unclipped norms ``norms`` (any shape) at threshold C (broadcastable):
    ``min(1, C / (n + 1e-6))`` for ``"abadi"`` (the 1e-6 is opacus' too), ``C / (n + 0.01)`` for ``"automatic"``."""
    if style == "abadi":
        return (threshold / (norms + 1e-6)).clamp(max=1.0)
    return threshold / (norms + 0.01)


class DPAggregator:
    """Clips per-sample gradients, sums them per bank row, adds noise once per logical batch.

    Args:
        classifier: the banked classifier whose slots are trained.
        clipping: the clipping configuration.
        noise_multiplier: σ = noise std / C_tot.
        sources: one randomness source per bank row (its Gaussian noise).
        non_private: no clipping, no noise, mean over the examples actually drawn (the BiTFiT reference).
        comm: the ranks of a data-parallel run (default: this process alone). Each rank clips and sums its
            own examples; :meth:`finalize` sums the ranks' clipped sums in one flat all-reduce, and only
            rank 0 adds noise (see :meth:`finalize`).
    """

    def __init__(self, classifier: BankedClassifier, *, clipping: ClippingConfig, noise_multiplier: float,
                 sources: Sequence[RandomSource], non_private: bool = False, comm: Collective = SINGLE) -> None:
        self.classifier = classifier
        self.comm = comm
        self.slots = classifier.slots
        self.clipping = clipping
        self.non_private = non_private
        self.noise_multiplier = 0.0 if non_private else float(noise_multiplier)
        k = classifier.num_models
        if len(sources) != k:
            raise ValueError(f"need one randomness source per model: {k} models, got {len(sources)}.")
        self.sources = list(sources)
        ids, thresholds, self.group_names = clipping.assign([s.name for s in self.slots])
        classifier.bank.set_groups(ids, len(thresholds))
        device = self.slots[0].param.device
        self.thresholds = torch.tensor(thresholds, dtype=self.slots[0].param.dtype, device=device)
        self.total_norm = math.sqrt(sum(c * c for c in thresholds))
        self.sums = [torch.zeros_like(s.param, dtype=torch.promote_types(s.param.dtype, torch.float32))
                     for s in self.slots]
        self.counts = torch.zeros(k, dtype=torch.float32, device=device)
        self.kernels = kernel_backend(device)
        # running totals kept on the device: reading them per micro-batch would stall the GPU
        self._examples = torch.zeros((), dtype=torch.float64, device=device)
        self._clipped = torch.zeros((), dtype=torch.float64, device=device)
        self._norm_sum = torch.zeros((), dtype=torch.float64, device=device)

    def accumulate(self) -> None:
        """Clip this micro-batch's per-sample gradients and add them into their model rows."""
        bank = self.classifier.bank
        m = bank.model_index
        norms = bank.sqnorm.sqrt()  # (G, B)
        if self.non_private:
            factors = torch.ones_like(norms)
        else:
            factors = clip_factors(norms, self.thresholds[:, None], self.clipping.style)
        for slot, acc in zip(self.slots, self.sums):
            if slot.per_sample is None:  # a table this micro-batch's graph never reached: zero gradient
                continue
            self.kernels.scaled_bank_sum(slot.per_sample, factors[slot.group], m, acc)
        self.counts.index_add_(0, m, torch.ones_like(m, dtype=torch.float32))
        self._examples += m.numel()
        if not self.non_private:
            self._clipped += (norms > self.thresholds[:, None]).any(0).sum()
        self._norm_sum += bank.sqnorm.sum(0).sqrt().sum()  # total norm = sqrt of the summed group squares
        bank.release()

    @property
    def stats(self) -> dict[str, float]:
        """Examples seen, how many were clipped, and the sum of their unclipped norms (one device sync)."""
        return {"examples": float(self._examples), "clipped": float(self._clipped), "norm_sum": float(self._norm_sum)}

    def finalize(self, *, expected_batch_size: Sequence[float], step: int) -> None:
        """Write ``param.grad`` for every table: noisy clipped mean per row, then reset the sums.

        Args:
            expected_batch_size: ``q · N_k`` for each row k (the DP-SGD denominator; the non-private
                reference divides by the number of examples actually drawn).
            step: 0-based index of this optimizer step (keys a seeded row's noise stream).

        Data-parallel (``comm.world_size > 1``): rank 0 adds ``N(0, σ²C_tot² I)`` to its own clipped sums and
        every other rank adds nothing; the one all-reduce then gives every rank ``Σ_r sum_r + noise`` — the
        noise is in the total exactly once, with exactly the single-process variance, from rank 0's source
        (the CSPRNG, or the seeded stream a single process would draw). Splitting it as ``N(0, σ²C²/W)``
        per rank would give the same total variance only if no rank's share were known: a rank that kept
        its draw would leave the others' ``(W−1)/W`` of the variance.
        """
        k = self.classifier.num_models
        std = self.noise_multiplier * self.total_norm
        if std > 0 and self.comm.is_main:
            sizes = [s.param[0].numel() for s in self.slots]
            draws = np.stack([src.gaussian(sum(sizes), std, step=step) for src in self.sources])
            noise = torch.from_numpy(draws).to(device=self.counts.device, dtype=self.sums[0].dtype)
            offset = 0
            for slot, acc, n in zip(self.slots, self.sums, sizes):
                acc.add_(noise[:, offset:offset + n].view(k, *slot.param.shape[1:]))
                offset += n
        if self.comm.world_size > 1:
            self._all_reduce()
        if self.non_private:
            denom = self.counts.clamp_min(1.0)
        else:
            denom = torch.as_tensor(expected_batch_size, dtype=torch.float32, device=self.counts.device)
        for slot, acc in zip(self.slots, self.sums):
            view = (k,) + (1,) * (acc.dim() - 1)
            slot.param.grad = (acc / denom.view(view)).to(slot.param.dtype)
            acc.zero_()
        self.counts.zero_()

    def _all_reduce(self) -> None:
        """Sum every rank's (noised on rank 0) clipped sums in ONE flat buffer: the trainable tensors only,
        plus the per-row example counts in the non-private reference (its denominator)."""
        parts = [acc.reshape(-1) for acc in self.sums] + ([self.counts] if self.non_private else [])
        flat = torch.cat([p.to(self.sums[0].dtype) for p in parts])
        self.comm.all_reduce_sum_(flat)
        offset = 0
        for part in parts:
            part.copy_(flat[offset:offset + part.numel()].view_as(part))
            offset += part.numel()

    def reduced_stats(self) -> dict[str, float]:
        """:attr:`stats` summed over ranks (one 3-number all-reduce, at the end of a run)."""
        totals = torch.stack([self._examples, self._clipped, self._norm_sum]).cpu()
        self.comm.all_reduce_sum_(totals)
        return dict(zip(("examples", "clipped", "norm_sum"), totals.tolist()))
