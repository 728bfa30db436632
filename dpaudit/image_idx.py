"""IDX files (the MNIST / Fashion-MNIST format), read with bounds: ``*-images-idx3-ubyte[.gz]`` beside
``*-labels-idx1-ubyte[.gz]``.

Format (LeCun et al., http://yann.lecun.com/exdb/mnist/): two zero bytes, a type byte (``0x08`` = uint8), the
number of dimensions d, then d big-endian uint32 sizes, then the values row-major. Images are (N, H, W),
labels (N,). The header is checked before any data is read, and the data are read to exactly the size the
header states (a gzip stream is never decompressed past it), so neither a lying header nor a gzip bomb
makes the reader allocate more than :data:`dpaudit.image_decode.MAX_TOTAL_BYTES`.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from dpaudit.errors import DataError
from dpaudit.image_decode import MAX_IMAGES, MAX_TOTAL_BYTES, check_pixel_count, open_image_file

_UBYTE = 0x08


def labels_path_for(images: Path) -> Path:
    """The labels file beside an images file: ``images-idx3`` → ``labels-idx1`` in the name."""
    if "images-idx3" not in images.name:
        raise DataError(f"'{images.name}' is not named like an IDX images file (*-images-idx3-ubyte[.gz]); "
                        f"point data.path at the images file (its labels file must sit beside it).")
    return images.with_name(images.name.replace("images-idx3", "labels-idx1"))


def is_idx_path(path: str | Path) -> bool:
    """Whether ``path`` names an IDX images file (by name: ``*images-idx3-ubyte`` with optional ``.gz``)."""
    name = Path(path).name
    return "images-idx3-ubyte" in name and (name.endswith("ubyte") or name.endswith("ubyte.gz"))


def _read_exact(handle, n: int, path: Path) -> bytes:
    data = handle.read(n)
    if len(data) != n:
        raise DataError(f"IDX file '{path.name}' is truncated ({len(data):,} of {n:,} bytes); download it again.")
    return data


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array of one IDX file of ``ndim`` dimensions (3 for images, 1 for labels).

    Raises:
        DataError: not an IDX file of that kind, sizes beyond the limits, truncated, or trailing data.
    """
    fd = open_image_file(path, root=None, max_bytes=MAX_TOTAL_BYTES + 64)
    try:
        with open(fd, "rb") as raw, (gzip.open(raw, "rb") if path.name.endswith(".gz") else raw) as handle:
            zero, kind, dims = struct.unpack(">HBB", _read_exact(handle, 4, path))
            if zero != 0 or kind != _UBYTE or dims != ndim:
                raise DataError(f"'{path.name}' is not a uint8 IDX file of {ndim} dimension(s) (header "
                                f"{zero:#x}/{kind:#x}/{dims}); point data.path at *-images-idx3-ubyte[.gz].")
            shape = struct.unpack(f">{ndim}I", _read_exact(handle, 4 * ndim, path))
            total = int(np.prod(shape, dtype=np.int64))
            if shape[0] > MAX_IMAGES or total > MAX_TOTAL_BYTES:
                raise DataError(f"IDX file '{path.name}' declares shape {shape}, beyond the limits ({MAX_IMAGES:,} "
                                f"images, {MAX_TOTAL_BYTES:,} bytes); use a smaller file.")
            if ndim == 3:
                check_pixel_count(shape[2], shape[1], path)
            data = _read_exact(handle, total, path)
            if handle.read(1):
                raise DataError(f"IDX file '{path.name}' has data after the {total:,} bytes its header declares; "
                                f"it is not a well-formed IDX file — download it again.")
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"IDX file '{path.name}' could not be read ({err}); download it again.") from None
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def read_idx_pair(images: Path) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (N, H, W, 1) uint8, raw labels (N,) uint8) of an images file and its labels file."""
    labels_file = labels_path_for(images)
    if not labels_file.exists():
        raise DataError(f"IDX labels file '{labels_file.name}' not found beside '{images.name}'; put "
                        f"*-labels-idx1-ubyte[.gz] in the same folder.")
    pixels = read_idx(images, 3)
    labels = read_idx(labels_file, 1)
    if len(labels) != len(pixels):
        raise DataError(f"IDX files disagree: {len(pixels):,} images in '{images.name}' but {len(labels):,} "
                        f"labels in '{labels_file.name}'; use the matching pair.")
    return pixels[..., None], labels
