"""Preprocessed images and micro-batch assembly: the image counterpart of :mod:`trainers.batching`.

Pixels of an :class:`~dpaudit.image_dataset.ImageDataset` (uint8, N×H×W×C) are preprocessed once into one
float32 tensor (N, C', H', W') — as texts are tokenised once — and a micro-batch is a slice of it.
:class:`EncodedImages` has the interface of :class:`~trainers.batching.EncodedTexts` the loop and the
prediction read (``len``, ``lengths``, ``collate``), so one training loop drives both; every image has the
same size, so ``lengths`` is all zeros and micro-batches keep their order.

Preprocessing (:class:`ImagePreprocessor`):

* channels first made to match the model's ``num_channels``: grey → RGB repeats the channel; RGB → grey is
  the ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` (rounded back to uint8);
* then the model directory's ``AutoImageProcessor`` (``preprocessor_config.json``: its resize, rescale and
  normalisation), or, without one, the stated default: ``x / 255``, bilinear resize to ``config.image_size``
  when it differs, then ``(x − 0.5) / 0.5`` per channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dpaudit.errors import DataError

#: Images per image-processor call (bounds its per-call buffers).
PROCESS_BATCH = 1024
#: The most bytes the preprocessed float32 cache may take (N·C·H·W·4).
MAX_CACHE_BYTES = 8 << 30


@dataclass(frozen=True)
class EncodedImages:
    """Preprocessed pixels (N, C, H, W) float32 on the CPU."""

    pixel_values: torch.Tensor

    def __len__(self) -> int:
        return int(self.pixel_values.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        return np.zeros(len(self), dtype=np.int64)

    def collate(self, indices: np.ndarray, device: torch.device) -> tuple[torch.Tensor, None]:
        """``(pixel_values (B, C, H, W), None)`` for the given example indices (no mask for images)."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return self.pixel_values.index_select(0, idx).to(device), None

    def collate_types(self, indices: np.ndarray, device: torch.device) -> None:
        return None


def match_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """``pixels`` (N, H, W, C) uint8 with ``channels`` channels (see the module docstring)."""
    have = pixels.shape[-1]
    if have == channels:
        return pixels
    if have == 1 and channels == 3:
        return np.repeat(pixels, 3, axis=-1)
    if have == 3 and channels == 1:
        luma = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.clip(np.rint(luma), 0, 255).astype(np.uint8)[..., None]
    raise DataError(f"images have {have} channels and the model reads {channels}; dpaudit converts only between "
                    f"grey (1) and RGB (3).")


@dataclass(frozen=True)
class ImagePreprocessor:
    """How a vision model's input is made: its ``AutoImageProcessor`` (or None: the stated default)."""

    num_channels: int
    image_size: int | None
    processor: Any = None

    @property
    def description(self) -> str:
        if self.processor is not None:
            return f"{type(self.processor).__name__} (the model directory's preprocessor_config.json)"
        size = f", resize to {self.image_size}×{self.image_size}" if self.image_size else ""
        return f"default: x/255{size}, (x-0.5)/0.5"

    def encode(self, ds) -> EncodedImages:
        """Preprocess every image of ``ds`` (an ImageDataset) once: :class:`EncodedImages`."""
        pixels = match_channels(np.asarray(ds.pixels, dtype=np.uint8), self.num_channels)
        n, h, w, c = pixels.shape
        out_h, out_w = (self.image_size, self.image_size) if self.image_size else (h, w)
        if n * c * out_h * out_w * 4 > MAX_CACHE_BYTES:
            raise DataError(f"{n:,} images of {c}×{out_h}×{out_w} floats take more than {MAX_CACHE_BYTES >> 30} GiB "
                            f"preprocessed; lower data.max_examples.")
        chunks = [self._chunk(pixels[s : s + PROCESS_BATCH]) for s in range(0, n, PROCESS_BATCH)]
        values = torch.cat(chunks) if chunks else torch.zeros(0, c, out_h, out_w)
        return EncodedImages(values.to(torch.float32).contiguous())

    def _chunk(self, pixels: np.ndarray) -> torch.Tensor:
        if self.processor is not None:
            out = self.processor(images=list(pixels), return_tensors="pt", input_data_format="channels_last")
            return torch.as_tensor(out["pixel_values"], dtype=torch.float32)
        x = torch.from_numpy(pixels).permute(0, 3, 1, 2).to(torch.float32) / 255.0
        if self.image_size and tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            x = torch.nn.functional.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                                                align_corners=False, antialias=True)
        return (x - 0.5) / 0.5
