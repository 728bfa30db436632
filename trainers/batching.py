"""Tokenised texts and micro-batch assembly.

Texts are tokenised once (cut to a character budget, truncated to ``max_length`` tokens, unpadded); a
micro-batch is padded to its own longest sequence. :func:`micro_batches` sorts (example, model) pairs by
length first, so padding is small — the clipped sums do not depend on how a logical batch is split.
Text pairs (NLI, paraphrase) go through the tokenizer's pair encoding (``tokenizer(texts, pairs)``), and
their segment ids are kept beside the token ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

#: Characters of a text handed to the tokenizer per token of ``max_length``. Real text averages about 4-6
#: characters per WordPiece/BPE token, so 32 leaves a wide margin: only a text whose first
#: ``32 * max_length`` characters hold fewer than ``max_length`` tokens (e.g. long runs of whitespace) is
#: tokenised differently from the untruncated text, and then from that prefix.
CHARS_PER_TOKEN = 32
#: Texts per tokenizer call (bounds the tokenizer's per-call buffers).
TOKENIZE_BATCH = 4096


@dataclass(frozen=True)
class EncodedTexts:
    """Token ids per example (ragged), the padding id, and the segment ids of text pairs (None for single
    texts; the BiasBank path scores pairs with all-zero segments, the full fine-tuning recipe passes them)."""

    ids: tuple[np.ndarray, ...]
    pad_id: int
    type_ids: tuple[np.ndarray, ...] | None = None
    #: Causal LM texts: per example, the first token that is a prediction target (1: every token after the
    #: first; the prompt's length when only a completion is learned). None for classification texts.
    loss_from: tuple[int, ...] | None = None

    @classmethod
    def from_dataset(cls, ds, tokenizer, *, max_length: int) -> "EncodedTexts":
        """Tokenise a :class:`dpaudit.data.TextDataset`: its texts, or its (text, pair) pairs.

        With an image preprocessor in the tokenizer's place (a vision model, :func:`dpaudit.models.load_backbone`)
        the dataset is an ImageDataset and this returns its :class:`~trainers.image_batching.EncodedImages`.
        """
        from dpaudit.trainers.image_batching import ImagePreprocessor

        if isinstance(tokenizer, ImagePreprocessor):
            return tokenizer.encode(ds)
        return cls.from_texts(ds.texts, tokenizer, max_length=max_length, pairs=ds.pairs)

    @classmethod
    def from_texts(cls, texts: Sequence[str], tokenizer, *, max_length: int,
                   pairs: Sequence[str] | None = None) -> "EncodedTexts":
        """Tokenise ``texts`` (with ``pairs``: each text and its pair) to at most ``max_length`` tokens each,
        special tokens included; a pair is truncated longest-first.

        Each text is first cut to ``max_length * CHARS_PER_TOKEN`` characters, so a huge field costs no more
        than a long sentence (a fast tokenizer encodes the whole string before truncating), and texts are
        encoded :data:`TOKENIZE_BATCH` at a time.
        """
        budget = max_length * CHARS_PER_TOKEN
        ids: list[np.ndarray] = []
        types: list[np.ndarray] = []
        for start in range(0, len(texts), TOKENIZE_BATCH):
            batch = [t[:budget] for t in texts[start : start + TOKENIZE_BATCH]]
            if pairs is None:
                enc = tokenizer(batch, truncation=True, max_length=max_length, padding=False)
            else:
                second = [t[:budget] for t in pairs[start : start + TOKENIZE_BATCH]]
                enc = tokenizer(batch, second, truncation="longest_first", max_length=max_length, padding=False,
                                return_token_type_ids=True)
                types.extend(np.asarray(x, dtype=np.int64) for x in enc["token_type_ids"])
            ids.extend(np.asarray(x, dtype=np.int64) for x in enc["input_ids"])
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        return cls(tuple(ids), int(pad), None if pairs is None else tuple(types))

    @classmethod
    def from_lm_texts(cls, texts: Sequence[str], tokenizer, *, max_length: int,
                      completions: Sequence[str] | None = None) -> "EncodedTexts":
        """Causal LM examples: each text tokenised (special tokens included) to at most ``max_length`` tokens;
        with ``completions``, the text is the prompt and its completion's tokens (no special tokens) follow it,
        and only they are prediction targets (``loss_from`` = the prompt's length)."""
        plain = cls.from_texts(texts, tokenizer, max_length=max_length)
        if completions is None:
            return cls(plain.ids, plain.pad_id, None, tuple(1 for _ in plain.ids))
        budget = max_length * CHARS_PER_TOKEN
        ids, starts = [], []
        for start in range(0, len(completions), TOKENIZE_BATCH):
            batch = [t[:budget] for t in completions[start : start + TOKENIZE_BATCH]]
            enc = tokenizer(batch, add_special_tokens=False, truncation=True, max_length=max_length, padding=False)
            for prompt, tail in zip(plain.ids[start : start + len(batch)], enc["input_ids"]):
                ids.append(np.concatenate([prompt, np.asarray(tail, dtype=np.int64)])[:max_length])
                starts.append(max(1, len(prompt)))
        return cls(tuple(ids), plain.pad_id, None, tuple(starts))

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

    def collate_loss_mask(self, indices: np.ndarray, device: torch.device) -> torch.Tensor:
        """(B, T_max) int64: 1 at token positions ``t ≥ loss_from[i]`` (prediction targets), else 0."""
        if self.loss_from is None:
            raise ValueError("these texts were not encoded for a causal LM (EncodedTexts.from_lm_texts).")
        t = max((len(self.ids[i]) for i in indices), default=1)
        starts = torch.as_tensor([self.loss_from[i] for i in indices], dtype=torch.long).view(-1, 1)
        return (torch.arange(t).view(1, -1) >= starts).long().to(device)

    def collate_types(self, indices: np.ndarray, device: torch.device) -> torch.Tensor:
        """Segment ids (B, T_max) int64 for the given examples, padded with 0 (all 0 for single texts)."""
        seqs = [self.ids[i] for i in indices]
        out = np.zeros((len(seqs), max((len(s) for s in seqs), default=1)), dtype=np.int64)
        if self.type_ids is not None:
            for row, i in enumerate(indices):
                out[row, : len(self.type_ids[i])] = self.type_ids[i]
        return torch.from_numpy(out).to(device)


def micro_batches(examples: np.ndarray, models: np.ndarray, lengths: np.ndarray,
                  size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Split (example, model) pairs into chunks of at most ``size``, sorted by sequence length."""
    order = np.argsort(lengths[examples], kind="stable")
    examples, models = examples[order], models[order]
    for start in range(0, len(examples), size):
        yield examples[start : start + size], models[start : start + size]
