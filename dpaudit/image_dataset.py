"""A labelled image population: the image counterpart of :class:`dpaudit.data.TextDataset`.

Pixels are kept as decoded ``uint8`` arrays in one layout, whatever the source (an ImageFolder tree, a
``datasets.save_to_disk`` directory with an ``Image`` column, a table with an image-path column, IDX files);
the model side turns them into the backbone's input with its image processor (:mod:`dpaudit.image_data`
reads, the trainers preprocess).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageDataset:
    """A labelled image population.

    Attributes:
        pixels: uint8 array of shape (N, H, W, C), C = 1 (grey) or 3 (RGB); one size for the population.
        labels: int64 array of shape (N,), values in ``range(len(label_names))``.
        label_names: class names, index = label.
        name, source: human-readable name and where it was read from.
        sha256: :func:`image_content_hash` of (pixels, labels), for the report.
    """

    pixels: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    name: str
    source: str
    sha256: str

    def __len__(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return tuple(int(d) for d in self.pixels.shape[1:])  # type: ignore[return-value]


def image_content_hash(pixels: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 over the shape ``H×W×C``, then per example its raw pixel bytes and ``\\0 label \\1``."""
    h = hashlib.sha256("x".join(str(int(d)) for d in pixels.shape[1:]).encode())
    for img, y in zip(pixels, labels):
        h.update(np.ascontiguousarray(img, dtype=np.uint8).tobytes())
        h.update(b"\x00" + str(int(y)).encode() + b"\x01")
    return h.hexdigest()
