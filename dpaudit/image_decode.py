"""Decoding untrusted image files with Pillow, within bounds: file size, pixels, decompression bombs.

Every image passes two stages. :func:`probe` opens it (Pillow reads only the header) and checks its size in
pixels against :func:`pixel_limit` before any pixel is decoded; :func:`decode` then decodes it, converts it
to one mode (``L`` or ``RGB``) and, when a target size is set, resizes it (bicubic). A file that Pillow
cannot identify or decode, or that Pillow itself flags as a decompression bomb
(``PIL.Image.DecompressionBombError`` / ``DecompressionBombWarning``, raised here as an error), is a one-line
:class:`~dpaudit.errors.DataError` naming the file and the fix.

Files are opened only when they are regular files (a FIFO or ``/dev/zero`` is refused at once, as for
reports: :func:`dpaudit.input_limits.open_regular`), at most :data:`MAX_FILE_BYTES` each; under a root folder
(an ImageFolder tree, a table's folder) the file's resolved path, symbolic links followed, must stay inside
that folder.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from dpaudit.errors import DataError
from dpaudit.input_limits import format_bytes, open_regular

#: Most images in one population (the pixel array is held in memory; 1M MNIST-size images are 784 MB).
MAX_IMAGES = 1_000_000
#: Most bytes of the decoded population (N·H·W·C uint8).
MAX_TOTAL_BYTES = 8 << 30
#: Largest image file read (bytes).
MAX_FILE_BYTES = 64 << 20
#: Most pixels (W·H) of one image before decoding; Pillow's own ``Image.MAX_IMAGE_PIXELS`` applies when smaller.
MAX_PIXELS = 4096 * 4096
#: Largest side of the images after resizing (``data.image_size``).
MAX_SIDE = 1024
#: File name endings read as images in a folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
#: Pillow modes that hold no colour: converted to ``L``; every other mode to ``RGB`` (alpha dropped).
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F", "La"})


def pixel_limit() -> int:
    """The most pixels one image may have: :data:`MAX_PIXELS`, or Pillow's ``Image.MAX_IMAGE_PIXELS`` if lower
    (read at each call, so a lowered Pillow limit applies)."""
    from PIL import Image

    pillow = Image.MAX_IMAGE_PIXELS
    return MAX_PIXELS if pillow is None else min(MAX_PIXELS, int(pillow))


def check_pixel_count(width: int, height: int, path: Path | str) -> None:
    """Refuse an image of more than :func:`pixel_limit` pixels (a decompression bomb or a far too large image)."""
    limit = pixel_limit()
    if width * height > limit:
        raise DataError(f"image '{path}' is {width}×{height} = {width * height:,} pixels, over the limit of "
                        f"{limit:,} (a decompression bomb or an oversized image); downscale it or remove it.")


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (symbolic links resolved) lies inside the folder ``root`` (resolved)."""
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(root))
    except ValueError:
        return False
    return True


def open_image_file(path: Path, *, root: Path | None, max_bytes: int | None = None) -> int:
    """A read-only descriptor of the regular file ``path`` of at most ``max_bytes`` (default
    :data:`MAX_FILE_BYTES`) bytes, inside ``root`` when given (DataError otherwise, one line)."""
    max_bytes = MAX_FILE_BYTES if max_bytes is None else max_bytes
    if root is not None and not inside(path, root):
        raise DataError(f"image path '{path}' leads outside the folder '{root}' (an absolute path, '..' or a link "
                        f"out of it); keep every image inside that folder and give paths relative to it.")
    try:
        fd = open_regular(path, what="image", error=DataError)
    except FileNotFoundError:
        raise DataError(f"image file '{path}' does not exist; fix the path or remove the row.") from None
    except OSError as err:
        raise DataError(f"image file '{path}' cannot be opened ({err.strerror or err}); check it.") from None
    size = os.fstat(fd).st_size
    if size > max_bytes:
        os.close(fd)
        raise DataError(f"image file '{path}' is {format_bytes(size)}, over the limit of {format_bytes(max_bytes)}; "
                        f"downscale or recompress it.")
    return fd


def read_image_bytes(path: Path, *, root: Path | None) -> bytes:
    """The bytes of an image file (bounded, contained: :func:`open_image_file`)."""
    with os.fdopen(open_image_file(path, root=root), "rb") as handle:
        return handle.read(MAX_FILE_BYTES + 1)


@contextmanager
def _pillow_errors(where: str, errors: tuple, failure: Callable[[BaseException], str]) -> Iterator[None]:
    """Pillow work on image ``where`` with its bomb warning raised: a bomb or one of ``errors`` becomes a
    one-line DataError (``failure(err)`` says what went wrong)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise DataError(f"image '{where}' is refused as a decompression bomb ({err}); downscale it or "
                        f"remove it.") from None
    except errors as err:
        raise DataError(f"image '{where}' {failure(err)}; replace or remove the file.") from None


def _open(data: bytes, where: str):
    """A lazily opened Pillow image (header read, pixels not yet decoded), its size checked."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_FILE_BYTES:
        raise DataError(f"image '{where}' is over {format_bytes(MAX_FILE_BYTES)}; downscale or recompress it.")
    with _pillow_errors(where, (UnidentifiedImageError, OSError, ValueError, SyntaxError),
                        lambda err: f"is not a readable image ({type(err).__name__})"):
        img = Image.open(io.BytesIO(data))
    check_pixel_count(img.size[0], img.size[1], where)
    return img


def probe(data: bytes, where: str) -> tuple[int, int, str]:
    """(width, height, "L" or "RGB") from the header only, the pixel count checked."""
    img = _open(data, where)
    return img.size[0], img.size[1], "L" if img.mode in GREY_MODES else "RGB"


def decode(data: bytes, where: str, *, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    """The image as a uint8 array (H, W, C), C = 1 for ``mode="L"``, 3 for ``"RGB"``; resized (bicubic) to
    ``size`` = (width, height) when given and different.

    Raises:
        DataError: undecodable or truncated data, or a decompression bomb (one line naming ``where``).
    """
    from PIL import Image

    img = _open(data, where)
    with _pillow_errors(where, (OSError, ValueError, SyntaxError, EOFError),
                        lambda err: f"could not be decoded ({type(err).__name__}: {str(err)[:120]})"):
        img.load()
        if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # wide grey: scale to 8 bits
            arr = np.asarray(img, dtype=np.float64)
            top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max()), 1.0)
            img = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
        img = img.convert(mode)
        if size is not None and img.size != size:
            img = img.resize(size, Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr
