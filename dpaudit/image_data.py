"""Image populations from files: an ImageFolder tree or IDX files → :class:`~dpaudit.image_dataset.ImageDataset`.

The entry points the pipeline calls (:func:`load_configured_images`, :func:`load_image_dataset`) come first.
This is the minimal reader set of the vision-model branch; the image-data branch brings the fuller one
(``datasets.save_to_disk`` with an ``Image`` column, tables with an image-path column, the embedded
Fashion-MNIST behind ``data.path = "embedded-images"``) under the same names.

* ImageFolder: ``root/<class name>/<image file>`` (PNG, JPEG, … as Pillow decodes them); classes are the
  sorted subfolder names; every image must have one size; grey (mode ``L``) images stay 1 channel unless any
  image is colour, then all are RGB.
* IDX (LeCun's MNIST format, optionally gzipped): a directory with ``<split>-images-idx3-ubyte[.gz]`` and
  ``<split>-labels-idx1-ubyte[.gz]`` (``split = "test"`` also finds ``t10k-*``); the header is read, not
  assumed (magic ``0x0803``/``0x0801``, big-endian dimensions); class names are the label values.

``max_examples`` keeps the rows ``sort(numpy.random.default_rng(seed).choice(N, max_examples,
replace=False))``, as :func:`dpaudit.data.load_dataset` does for texts.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from dpaudit.errors import DataError
from dpaudit.image_dataset import ImageDataset, image_content_hash

#: ``data.path`` value of the embedded image task (Fashion-MNIST; the image-data branch ships it).
EMBEDDED_IMAGES = "embedded-images"
#: Largest image accepted (pixels); a larger header is refused before decoding (decompression bombs).
MAX_IMAGE_PIXELS = 4096 * 4096
#: Most images read from one source.
MAX_IMAGES = 2_000_000
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


def load_configured_images(cfg) -> ImageDataset:
    """The image population of a resolved config (``cfg.data.path``, ``split``, ``max_examples``, seeded by
    ``cfg.train.seed``), loaded the same way by every command."""
    d = cfg.data
    return load_image_dataset(d.path, split=d.split, max_examples=d.max_examples, seed=cfg.train.seed)


def load_image_dataset(path: str | Path, *, split: str = "train", max_examples: int | None = None,
                       seed: int = 0) -> ImageDataset:
    """An ImageFolder tree or an IDX directory (see the module docstring).

    Raises:
        DataError: one line naming the path and the fix.
    """
    if str(path) == EMBEDDED_IMAGES:
        return load_embedded_images(max_examples=max_examples, seed=seed)
    p = Path(path)
    if not p.is_dir():
        raise DataError(f"image data '{p}' is not a directory; point data.path at an ImageFolder tree "
                        f"(one subfolder per class) or a directory of IDX files.")
    idx = _idx_files(p, split)
    if idx is not None:
        pixels, labels = _read_idx(*idx)
        names = tuple(str(v) for v in range(int(labels.max()) + 1)) if len(labels) else ()
    else:
        pixels, labels, names = _read_image_folder(p)
    keep = _subset(len(labels), max_examples, seed)
    pixels, labels = np.ascontiguousarray(pixels[keep]), labels[keep]
    if len(np.unique(labels)) < 2:
        raise DataError(f"image data '{p}' has fewer than two classes; a classifier needs at least two.")
    return ImageDataset(pixels, labels, names, p.name, str(p), image_content_hash(pixels, labels))


def load_embedded_images(*, max_examples: int | None = None, seed: int = 0) -> ImageDataset:
    """The embedded image task (Fashion-MNIST): provided by the image-data branch; this build has none."""
    raise DataError("data.path = 'embedded-images': the embedded Fashion-MNIST is not part of this build; point "
                    "data.path at an ImageFolder tree or a directory of IDX files.")


def _subset(n: int, max_examples: int | None, seed: int) -> np.ndarray:
    if max_examples is None or max_examples >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_examples, replace=False))


def _idx_files(root: Path, split: str) -> tuple[Path, Path] | None:
    prefixes = (split, "t10k") if split == "test" else (split,)
    for prefix in prefixes:
        for suffix in ("", ".gz"):
            images = root / f"{prefix}-images-idx3-ubyte{suffix}"
            labels = root / f"{prefix}-labels-idx1-ubyte{suffix}"
            if images.is_file() and labels.is_file():
                return images, labels
    return None


def _idx_array(path: Path, magic: int, ndim: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        head = fh.read(4 + 4 * ndim)
        if len(head) < 4 + 4 * ndim or int.from_bytes(head[:4], "big") != magic:
            raise DataError(f"'{path}' is not an IDX file of uint8 with {ndim} dimension(s) (magic {magic:#06x}).")
        dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        if dims[0] > MAX_IMAGES or (ndim == 3 and dims[1] * dims[2] > MAX_IMAGE_PIXELS):
            raise DataError(f"'{path}' declares {dims} — more than dpaudit reads ({MAX_IMAGES:,} images of at most "
                            f"{MAX_IMAGE_PIXELS:,} pixels).")
        want = int(np.prod(dims))
        data = fh.read(want + 1)
    if len(data) != want:
        raise DataError(f"'{path}' holds {len(data):,} bytes of data, not the {want:,} its header declares.")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _read_idx(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    pixels = _idx_array(images, 0x0803, 3)[..., None]
    y = _idx_array(labels, 0x0801, 1).astype(np.int64)
    if len(y) != len(pixels):
        raise DataError(f"'{images}' has {len(pixels):,} images but '{labels}' {len(y):,} labels.")
    return pixels, y


def _read_image_folder(root: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files = [(f, k) for k, c in enumerate(classes) for f in sorted((root / c).iterdir())
             if f.is_file() and f.suffix.lower() in _IMAGE_SUFFIXES]
    if not files:
        raise DataError(f"image data '{root}' has no class subfolders with images (PNG, JPEG, …); use the "
                        f"ImageFolder layout root/<class>/<image>, or IDX files.")
    if len(files) > MAX_IMAGES:
        raise DataError(f"image data '{root}' has {len(files):,} images, more than {MAX_IMAGES:,}.")
    images = [_decode(f) for f, _ in files]
    if len({im.size for im in images}) > 1:
        sizes = sorted({im.size for im in images})[:3]
        raise DataError(f"images in '{root}' have different sizes ({', '.join(f'{w}×{h}' for w, h in sizes)}, …); "
                        f"dpaudit needs one size per population — resize them first.")
    mode = "L" if all(im.mode == "L" for im in images) else "RGB"
    arrays = [np.asarray(im.convert(mode), dtype=np.uint8) for im in images]
    pixels = np.stack([a[..., None] if a.ndim == 2 else a for a in arrays])
    return pixels, np.array([k for _, k in files], dtype=np.int64), tuple(classes)


def _decode(path: Path):
    from PIL import Image

    try:
        with Image.open(path) as im:
            size = im.size
            if size[0] * size[1] <= MAX_IMAGE_PIXELS:
                im.load()
                return im.convert("L") if im.mode in ("1", "L", "I;16", "I", "F") else im.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(f"image '{path}' cannot be decoded ({type(err).__name__}: {str(err)[:120]}).") from None
    raise DataError(f"image '{path}' is {size[0]}×{size[1]} pixels, more than {MAX_IMAGE_PIXELS:,}; refused "
                    f"before decoding (a decompression bomb, or far too large).")
