"""Poisson sampling for an ordinary ``torch.utils.data.DataLoader`` (what opacus' ``DPDataLoader`` does, with
dpaudit's randomness).

The accountant analyses Poisson subsampling: at every step each of the N examples is in the batch
independently with probability q, so the batch size is random (Binomial(N, q)) and may be 0. The loader
returned by :func:`poisson_loader` keeps the dataset, collate function and worker settings of the one given
and replaces its sampler: ``q = 1 / len(loader)`` (opacus' rule; ``len(loader)`` batches per epoch), every
draw from a :class:`~trainers.randomness.RandomSource` — the OS CSPRNG unless a seed is asked for by name.
An empty batch is the collate of one example cut to zero rows, so the model and the loss see tensors of
batch size 0 and the optimizer still takes its noise-only step (skipping it would reveal the empty batch).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from dpaudit.errors import ConfigError
from dpaudit.trainers.randomness import RandomSource


class PoissonBatchSampler:
    """``steps`` batches of indices into ``range(num_examples)``; batch s holds each index with probability
    ``sample_rate``, drawn from ``source`` at draw number s (counted across epochs, so a seeded source gives
    every epoch fresh batches)."""

    def __init__(self, num_examples: int, sample_rate: float, steps: int, source: RandomSource) -> None:
        self.num_examples, self.sample_rate, self.steps = int(num_examples), float(sample_rate), int(steps)
        self.source = source
        self.draws = 0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        for _ in range(self.steps):
            mask = self.source.bernoulli(self.num_examples, self.sample_rate, step=self.draws)
            self.draws += 1
            yield np.flatnonzero(mask).tolist()


def _zero_rows(batch):
    """``batch`` with every tensor cut to 0 rows (dicts, ``BatchEncoding``, lists and tuples recursed)."""
    if isinstance(batch, torch.Tensor):
        return batch[:0]
    if isinstance(batch, Mapping):
        return {k: _zero_rows(v) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_zero_rows(v) for v in batch) if not hasattr(batch, "_fields") else \
            type(batch)(*(_zero_rows(v) for v in batch))
    return batch


class _EmptySafeCollate:
    """The loader's collate function; an empty index list gives the collate of one example cut to 0 rows."""

    def __init__(self, collate, dataset) -> None:
        self.collate, self.dataset = collate, dataset

    def __call__(self, examples):
        if len(examples) == 0:
            return _zero_rows(self.collate([self.dataset[0]]))
        return self.collate(examples)


def poisson_loader(loader: DataLoader, source: RandomSource) -> tuple[DataLoader, float]:
    """``(new loader, q)``: ``loader``'s dataset and collation, batches drawn by Poisson sampling at
    ``q = 1 / len(loader)``, ``len(loader)`` batches per epoch.

    Raises:
        ConfigError: an iterable-style dataset (no random access, so no Poisson sampling), or an empty loader.
    """
    dataset = loader.dataset
    if isinstance(dataset, IterableDataset):
        raise ConfigError("the data loader wraps an IterableDataset; Poisson sampling needs a map-style dataset "
                          "(len and indexing) — materialise it, e.g. datasets.Dataset or a list.")
    steps = len(loader)
    if steps == 0 or len(dataset) == 0:
        raise ConfigError("the data loader is empty; DP training needs at least one example.")
    q = 1.0 / steps
    sampler = PoissonBatchSampler(len(dataset), q, steps, source)
    kwargs = dict(num_workers=loader.num_workers, pin_memory=loader.pin_memory, timeout=loader.timeout,
                  worker_init_fn=loader.worker_init_fn, multiprocessing_context=loader.multiprocessing_context)
    if loader.num_workers > 0:
        kwargs.update(prefetch_factor=loader.prefetch_factor, persistent_workers=loader.persistent_workers)
    new = DataLoader(dataset, batch_sampler=sampler, collate_fn=_EmptySafeCollate(loader.collate_fn, dataset), **kwargs)
    return new, q


def guard_empty_batches(module: torch.nn.Module):
    """Let a Hugging Face sequence classifier take a batch of 0 examples (Poisson sampling draws one with
    probability ``(1 − q)^N``; BERT's attention cannot reshape an empty batch): its forward then returns
    logits of shape (0, num_labels) and, given labels, a zero loss with a graph, so ``loss.backward();
    optimizer.step()`` runs as usual — the step adds noise only and is accounted. Returns a function that
    restores the original forward; modules without ``config.num_labels`` are left alone (returns None)."""
    num_labels = getattr(getattr(module, "config", None), "num_labels", None)
    if not isinstance(num_labels, int):
        return None
    from transformers.modeling_outputs import SequenceClassifierOutput

    original = module.forward

    def forward(*args, **kwargs):
        tensors = [v for v in list(args) + list(kwargs.values()) if isinstance(v, torch.Tensor) and v.dim() > 0]
        if not tensors or tensors[0].shape[0] != 0:
            return original(*args, **kwargs)
        p = next(module.parameters())
        logits = torch.zeros(0, num_labels, dtype=p.dtype, device=p.device, requires_grad=torch.is_grad_enabled())
        loss = logits.sum() if kwargs.get("labels") is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    module.forward = forward

    def restore() -> None:
        module.__dict__.pop("forward", None)

    return restore
