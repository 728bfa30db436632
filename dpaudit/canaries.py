"""Crafted canaries: examples built to be memorised, so that an audit can see leakage at CPU scale.

Natural examples barely move a BiTFiT model, so a membership audit on them reads ε_LB = 0 for private and
non-private models alike. A canary is an example whose label the rest of the data does not predict; a model
that trained on it fits it, one that did not, does not. Kinds (registered in :data:`CANARY_KINDS`):

* ``"mislabeled"`` — a population example, taken out of the natural population, with its label replaced by
  another class drawn uniformly from the other ``C − 1`` (ML Privacy Meter's and Steinke et al.'s canary).
* ``"unique"`` — a text nobody wrote: ``UNIQUE_WORDS`` words drawn uniformly (with replacement) from the
  natural texts' own vocabulary, with a label drawn uniformly from the ``C`` classes. A text pair gets a second
  such text. For images (an :class:`~dpaudit.image_dataset.ImageDataset`): an image of i.i.d. uniform
  uint8 pixel noise of the population's size and channels, with a label drawn uniformly from the ``C``
  classes. ``"mislabeled"`` works on images as on texts (the image is kept, its label replaced).

Which examples become canaries and their new labels are fixed before any model is trained (from a seeded
generator: nothing here depends on a training outcome); what is secret is each canary's inclusion, a fair coin
per canary drawn elsewhere from the OS CSPRNG (:mod:`dpaudit.pipeline.population`, ``dpaudit canaries make``).

The population an audit trains and scores on is ``natural + canaries`` in that order
(:func:`with_canaries`): canaries are the last ``m`` indices.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from dpaudit.data import TextDataset, _content_hash
from dpaudit.errors import DataError
from dpaudit.image_dataset import ImageDataset, image_content_hash

__all__ = ["CANARY_KINDS", "UNIQUE_WORDS", "CanarySet", "make_canaries", "with_canaries"]

#: Words in a ``"unique"`` canary text.
UNIQUE_WORDS = 12
_WORD = re.compile(r"[^\W\d_]{2,}", re.UNICODE)


@dataclass(frozen=True)
class CanarySet:
    """m crafted canaries.

    Attributes:
        kind: a key of :data:`CANARY_KINDS`.
        texts: the m canary texts (and ``pairs``, the m second texts of text pairs, or None).
        labels: int64 array of shape (m,), the label each canary is trained with.
        source_index: int64 array of shape (m,), the canary's row in the dataset it was made from
            (``-1`` for a text made up here).
        original_labels: int64 array of shape (m,), the label that row had (``-1`` when made up).
        pixels: image canaries only: uint8 (m, H, W, C) (``texts`` is then empty).
    """

    kind: str
    texts: tuple[str, ...]
    labels: np.ndarray
    source_index: np.ndarray
    original_labels: np.ndarray
    pairs: tuple[str, ...] | None = None
    pixels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def _other_class(labels: np.ndarray, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """A class ≠ ``labels[i]``, uniform over the other ``n_classes − 1``: ``(y + 1 + U{0..C−2}) mod C``."""
    return (labels + 1 + rng.integers(0, n_classes - 1, size=labels.shape)) % n_classes


def _mislabeled(ds: TextDataset, count: int, rng: np.random.Generator) -> tuple[np.ndarray, CanarySet]:
    if count > len(ds) // 2:
        raise DataError(f"{count} mislabeled canaries would take more than half of the {len(ds)} examples; use "
                        f"audit.canaries ≤ {len(ds) // 2} or more data.")
    rows = np.sort(rng.choice(len(ds), size=count, replace=False))
    labels = _other_class(ds.labels[rows], ds.num_classes, rng).astype(np.int64)
    if isinstance(ds, ImageDataset):
        return rows, CanarySet("mislabeled", (), labels, rows.astype(np.int64), ds.labels[rows].astype(np.int64),
                               pixels=ds.pixels[rows].copy())
    pairs = None if ds.pairs is None else tuple(ds.pairs[i] for i in rows)
    canaries = CanarySet("mislabeled", tuple(ds.texts[i] for i in rows), labels, rows.astype(np.int64),
                         ds.labels[rows].astype(np.int64), pairs)
    return rows, canaries


def _vocabulary(texts: tuple[str, ...]) -> np.ndarray:
    words = sorted({w.lower() for t in texts for w in _WORD.findall(t)})
    if len(words) < UNIQUE_WORDS:
        raise DataError(f"the texts hold only {len(words)} distinct words; unique canaries need ≥ {UNIQUE_WORDS}: "
                        f"use audit.canary_kind = 'mislabeled'.")
    return np.array(words, dtype=object)


def _unique(ds: TextDataset, count: int, rng: np.random.Generator) -> tuple[np.ndarray, CanarySet]:
    if isinstance(ds, ImageDataset):
        pixels = rng.integers(0, 256, size=(count, *ds.image_shape), dtype=np.uint8)
        labels = rng.integers(0, ds.num_classes, size=count).astype(np.int64)
        none = np.full(count, -1, dtype=np.int64)
        return np.zeros(0, dtype=np.int64), CanarySet("unique", (), labels, none, none.copy(), pixels=pixels)
    vocab = _vocabulary(ds.texts)

    def text() -> str:
        return " ".join(vocab[rng.integers(0, len(vocab), size=UNIQUE_WORDS)])

    texts = tuple(text() for _ in range(count))
    pairs = None if ds.pairs is None else tuple(text() for _ in range(count))
    labels = rng.integers(0, ds.num_classes, size=count).astype(np.int64)
    none = np.full(count, -1, dtype=np.int64)
    return np.zeros(0, dtype=np.int64), CanarySet("unique", texts, labels, none, none.copy(), pairs)


#: kind → ``(dataset, m, rng) -> (rows taken out of the dataset, CanarySet)``.
CANARY_KINDS: dict[str, Callable[[TextDataset, int, np.random.Generator], tuple[np.ndarray, CanarySet]]] = {
    "mislabeled": _mislabeled,
    "unique": _unique,
}


def _subset(ds: TextDataset, keep: np.ndarray) -> TextDataset:
    if isinstance(ds, ImageDataset):
        pixels, labels = np.ascontiguousarray(ds.pixels[keep]), ds.labels[keep]
        return replace(ds, pixels=pixels, labels=labels, sha256=image_content_hash(pixels, labels))
    texts = tuple(ds.texts[i] for i in keep)
    pairs = None if ds.pairs is None else tuple(ds.pairs[i] for i in keep)
    labels = ds.labels[keep]
    return replace(ds, texts=texts, labels=labels, pairs=pairs, sha256=_content_hash(texts, labels, pairs))


def make_canaries(ds: TextDataset, count: int, kind: str, *, seed: int) -> tuple[TextDataset, CanarySet]:
    """Make ``count`` canaries of ``kind`` from ``ds``.

    Args:
        ds: the natural population (N examples, C ≥ 2 classes).
        count: m ≥ 1 canaries.
        kind: a key of :data:`CANARY_KINDS`.
        seed: seeds which rows are taken and the new labels / texts (fixed before training; not secret).

    Returns:
        ``(natural, canaries)``: ``ds`` without the rows the canaries were made from (order kept), and the
        m canaries.

    Raises:
        DataError: unknown kind, m < 1, or a dataset that cannot give m canaries of that kind.
    """
    if kind not in CANARY_KINDS:
        raise DataError(f"unknown canary kind {kind!r}; known kinds: {', '.join(sorted(CANARY_KINDS))}.")
    if count < 1:
        raise DataError(f"count must be ≥ 1 canary, got count={count}.")
    rng = np.random.default_rng([seed, 0x43414E])  # a stream of its own, apart from every other use of seed
    rows, canaries = CANARY_KINDS[kind](ds, count, rng)
    keep = np.setdiff1d(np.arange(len(ds)), rows)
    return (ds if rows.size == 0 else _subset(ds, keep)), canaries


def with_canaries(natural: TextDataset, canaries: CanarySet) -> TextDataset:
    """The audit population ``natural + canaries``: the canaries are its last ``len(canaries)`` rows.

    Raises:
        DataError: the canaries have text pairs and the population does not, or the other way round.
    """
    if isinstance(natural, ImageDataset) != (canaries.pixels is not None):
        raise DataError("the canaries and the population disagree on the modality (images vs texts); make the "
                        "canaries from the same data.")
    if isinstance(natural, ImageDataset):
        return _with_image_canaries(natural, canaries)
    if (natural.pairs is None) != (canaries.pairs is None):
        raise DataError("the canaries and the population disagree on text pairs; make the canaries from the "
                        "same data (with the same data.text_pair_column).")
    if canaries.labels.size and int(canaries.labels.max()) >= natural.num_classes:
        raise DataError(f"a canary has label {int(canaries.labels.max())} but the population has "
                        f"{natural.num_classes} classes; make the canaries from the same data.")
    texts = natural.texts + canaries.texts
    pairs = None if natural.pairs is None else natural.pairs + canaries.pairs
    labels = np.concatenate([natural.labels, canaries.labels]).astype(np.int64)
    return replace(natural, texts=texts, labels=labels, pairs=pairs, sha256=_content_hash(texts, labels, pairs))


def _with_image_canaries(natural: ImageDataset, canaries: CanarySet) -> ImageDataset:
    if canaries.pixels.shape[1:] != natural.pixels.shape[1:]:
        raise DataError(f"canary images are {canaries.pixels.shape[1:]} and the population's "
                        f"{natural.pixels.shape[1:]}; make the canaries from the same data.")
    if canaries.labels.size and int(canaries.labels.max()) >= natural.num_classes:
        raise DataError(f"a canary has label {int(canaries.labels.max())} but the population has "
                        f"{natural.num_classes} classes; make the canaries from the same data.")
    pixels = np.concatenate([natural.pixels, canaries.pixels])
    labels = np.concatenate([natural.labels, canaries.labels]).astype(np.int64)
    return replace(natural, pixels=pixels, labels=labels, sha256=image_content_hash(pixels, labels))
