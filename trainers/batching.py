"""Tokenised texts and micro-batch assembly.

Texts are tokenised once (truncated to ``max_length``, unpadded); a micro-batch is padded to its own
longest sequence. :func:`micro_batches` sorts (example, model) pairs by length first, so padding is small
— the clipped sums do not depend on how a logical batch is split.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class EncodedTexts:
    """Token ids per example (ragged) and the padding id."""

    ids: tuple[np.ndarray, ...]
    pad_id: int

    @classmethod
    def from_texts(cls, texts: Sequence[str], tokenizer, *, max_length: int) -> "EncodedTexts":
        enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        return cls(tuple(np.asarray(x, dtype=np.int64) for x in enc["input_ids"]), int(pad))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.ids), dtype=np.int64, count=len(self.ids))

    def collate(self, indices: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, attention_mask)`` (B, T_max) int64 for the given example indices."""
        seqs = [self.ids[i] for i in indices]
        t = max((len(s) for s in seqs), default=1)
        ids = np.full((len(seqs), t), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(seqs), t), dtype=np.int64)
        for row, s in enumerate(seqs):
            ids[row, : len(s)] = s
            mask[row, : len(s)] = 1
        return torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)


def micro_batches(examples: np.ndarray, models: np.ndarray, lengths: np.ndarray,
                  size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Split (example, model) pairs into chunks of at most ``size``, sorted by sequence length."""
    order = np.argsort(lengths[examples], kind="stable")
    examples, models = examples[order], models[order]
    for start in range(0, len(examples), size):
        yield examples[start : start + size], models[start : start + size]
