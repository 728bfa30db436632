"""Image datasets: a labelled image population from a local folder, table, saved dataset, IDX files or the
embedded Fashion-MNIST task, as one :class:`~dpaudit.image_dataset.ImageDataset`.

Sources (``data.path``; layouts in :mod:`dpaudit.image_sources`, docs/images.md):

* ``embedded-images`` — the embedded private task: Fashion-MNIST classes 5-9 (:mod:`dpaudit.embedded_images`).
* a folder of class subfolders (ImageFolder), or a ``datasets.save_to_disk`` directory with an ``Image`` column;
* a CSV/TSV/Parquet/JSONL table with an image-path column (``data.image_column``) and a label column;
* an IDX images file ``*-images-idx3-ubyte[.gz]`` with its ``*-labels-idx1-ubyte[.gz]`` beside it.

Image or text: ``data.modality`` = ``"image"`` or ``"text"`` says it; ``"auto"`` (the default) decides by the
path (:func:`is_image_data`).

Every image is converted to one mode — ``L`` (1 channel) when every kept image is grey, else ``RGB`` (grey
images repeated over 3 channels, alpha dropped) — and one size: ``data.image_size`` = S resizes every image
to S×S (bicubic); unset, every kept image must have the first one's size (different sizes are refused with
one line naming the fix). ``max_examples`` keeps the rows ``sort(default_rng(seed).choice(N, max_examples,
replace=False))`` of the N listed rows, as :func:`dpaudit.data.load_dataset` does for text, and only those
are decoded. Limits: :mod:`dpaudit.image_decode` (images, bytes, pixels, decompression bombs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dpaudit import image_decode, image_sources
from dpaudit.data import MAX_CLASSES, _label_index
from dpaudit.errors import DataError
from dpaudit.image_dataset import ImageDataset, image_content_hash
from dpaudit.image_idx import is_idx_path, read_idx_pair

EMBEDDED_IMAGES = "embedded-images"
MODALITIES = ("auto", "text", "image")


def is_image_data(path: str | None, *, modality: str = "auto", image_column: str = "image",
                  text_column: str = "text") -> bool:
    """Whether ``data.path`` is read as images.

    ``modality`` ``"image"``/``"text"`` decides; ``"auto"``: ``embedded-images``, an IDX images file, a folder
    with subfolders that is not a saved dataset (ImageFolder: one subfolder per class; a folder of plain files,
    e.g. a model directory, is not), a saved dataset whose ``image_column`` is an ``Image`` column,
    or a CSV/TSV/Parquet table that has ``image_column`` but no ``text_column``. Anything else is text.
    """
    if modality != "auto":
        return modality == "image"
    if path == EMBEDDED_IMAGES:
        return True
    if path in (None, "", "embedded"):
        return False
    p = Path(path)
    if is_idx_path(p):
        return True
    if p.is_dir():
        if image_sources.is_saved_dataset(p):
            return _saved_has_image(p, image_column)
        return _has_subfolder(p)
    return p.is_file() and _table_has_image(p, image_column, text_column)


def _has_subfolder(path: Path) -> bool:
    try:
        return any(child.is_dir() for child in path.iterdir())
    except OSError:
        return False


def _saved_has_image(path: Path, image_column: str) -> bool:
    import json

    for info in [path / "dataset_info.json", *sorted(path.glob("*/dataset_info.json"))]:
        try:
            feature = json.loads(info.read_text(encoding="utf-8")).get("features", {}).get(image_column)
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(feature, dict) and feature.get("_type") == "Image":
            return True
    return False


def _table_has_image(path: Path, image_column: str, text_column: str) -> bool:
    suffixes = [s.lower() for s in path.suffixes]
    try:
        if ".parquet" in suffixes:
            import pyarrow.parquet as pq

            columns = pq.ParquetFile(path).schema_arrow.names
        elif ".csv" in suffixes or ".tsv" in suffixes:
            import pandas as pd

            columns = list(pd.read_csv(path, sep="\t" if ".tsv" in suffixes else ",", nrows=0).columns)
        else:
            return False
    except Exception:  # an unreadable table is the text loader's to report
        return False
    return image_column in columns and text_column not in columns


def _chosen(n: int, max_examples: int | None, seed: int) -> np.ndarray:
    if max_examples is None or n <= max_examples:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_examples, replace=False))


def _labels(raws: list, label_names, numeric_strings: bool, name: str, column: str):
    """(int64 labels, class names): the given names, else the distinct raw values sorted (as for text)."""
    distinct = set(raws)
    if label_names is None and len(distinct) > MAX_CLASSES:
        raise DataError(f"column '{column}' of dataset '{name}' has {len(distinct):,} distinct labels; dpaudit trains "
                        f"classifiers of at most {MAX_CLASSES} classes — set data.label_column to the class column.")
    return _label_index(raws, distinct, label_names, numeric_strings)


def _check_classes(labels: np.ndarray, label_names, name: str) -> None:
    if len(labels) == 0:
        raise DataError(f"dataset '{name}' has no images; point data.path at a dataset with images.")
    if len(set(labels.tolist())) < 2:
        raise DataError(f"dataset '{name}' has a single class ({label_names[labels[0]]}); a classifier needs "
                        f"images of at least two classes.")


def _target_size(image_size: int | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if not 1 <= image_size <= image_decode.MAX_SIDE:
        raise DataError(f"data.image_size {image_size} is out of range; use 1 to {image_decode.MAX_SIDE}.")
    return (image_size, image_size)


def _decode_all(readers: list, size: tuple[int, int] | None, name: str) -> np.ndarray:
    """Decode every image in order into one (N, H, W, C) uint8 array (see the module docstring)."""
    images, first, total = [], None, 0
    for read in readers:
        data, where = read()
        img = image_decode.decode(data, where, mode="RGB" if image_decode.probe(data, where)[2] == "RGB" else "L",
                                  size=size)
        if first is None:
            first = (where, img.shape[:2])
        elif img.shape[:2] != first[1]:
            (h0, w0), (h, w) = first[1], img.shape[:2]
            raise DataError(f"images of dataset '{name}' differ in size ('{first[0]}' is {w0}×{h0}, '{where}' is "
                            f"{w}×{h}); set data.image_size = S to resize every image to S×S.")
        total += img.size * (3 if img.shape[2] == 1 else 1)
        if total > image_decode.MAX_TOTAL_BYTES:
            raise DataError(f"dataset '{name}' decodes to more than {image_decode.MAX_TOTAL_BYTES:,} bytes of pixels; "
                            f"set data.max_examples or a smaller data.image_size.")
        images.append(img)
    if any(img.shape[2] == 3 for img in images):
        images = [np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img for img in images]
    return np.stack(images)


def _from_listing(listing: image_sources.Listing, *, label_column: str, max_examples: int | None, seed: int,
                  image_size: int | None) -> ImageDataset:
    image_sources.check_count(len(listing.readers), listing.name)
    labels, names = _labels(listing.raws, listing.label_names, listing.numeric_strings, listing.name, label_column)
    _check_classes(labels, names, listing.name)
    keep = _chosen(len(labels), max_examples, seed)
    labels = labels[keep]
    _check_classes(labels, names, listing.name)
    pixels = _decode_all([listing.readers[i] for i in keep], _target_size(image_size), listing.name)
    return ImageDataset(pixels, labels, tuple(names), listing.name, listing.source, image_content_hash(pixels, labels))


def resize_array(pixels: np.ndarray, image_size: int | None) -> np.ndarray:
    """(N, H, W, C) uint8 resized to S×S (bicubic, Pillow) when ``image_size`` = S differs from H×W."""
    size = _target_size(image_size)
    if size is None or pixels.shape[1:3] == (size[1], size[0]):
        return pixels
    from PIL import Image

    mode = "L" if pixels.shape[3] == 1 else "RGB"
    out = [np.asarray(Image.fromarray(img[..., 0] if mode == "L" else img, mode).resize(size, Image.Resampling.BICUBIC))
           for img in pixels]
    arr = np.stack(out)
    return arr[..., None] if arr.ndim == 3 else arr


def from_arrays(pixels: np.ndarray, raw_labels: np.ndarray, *, name: str, source: str, max_examples: int | None,
                seed: int, image_size: int | None, label_names: tuple[str, ...] | None = None) -> ImageDataset:
    """An :class:`ImageDataset` from decoded (N, H, W, C) uint8 pixels and raw labels (IDX files, the embedded
    task): labels indexed as for text (or, with ``label_names``, already indices into them), the
    ``max_examples`` subset taken, then resized."""
    image_sources.check_count(len(pixels), name)
    if label_names is None:
        labels, names = _labels([int(v) for v in raw_labels], None, False, name, "label")
    else:
        labels, names = np.asarray(raw_labels, dtype=np.int64), label_names
    _check_classes(labels, names, name)
    keep = _chosen(len(labels), max_examples, seed)
    pixels, labels = resize_array(np.ascontiguousarray(pixels[keep]), image_size), labels[keep]
    _check_classes(labels, names, name)
    return ImageDataset(pixels, labels, tuple(names), name, source, image_content_hash(pixels, labels))


def load_image_dataset(path: str | Path, *, label_column: str = "label", image_column: str = "image",
                       split: str = "train", max_examples: int | None = None, seed: int = 0,
                       image_size: int | None = None) -> ImageDataset:
    """Read the images at ``path`` (any source of the module docstring) into an :class:`ImageDataset`.

    Raises:
        DataError: one line naming the problem and the fix (missing path, bad layout, an image over the limits,
            undecodable, outside its folder, mixed sizes without ``image_size``, fewer than two classes).
    """
    if str(path) == EMBEDDED_IMAGES:
        from dpaudit.embedded_images import load_embedded_images

        return load_embedded_images(split=split, max_examples=max_examples, seed=seed, image_size=image_size)
    p = Path(path)
    if not p.exists():
        raise DataError(f"image data '{p}' does not exist; check data.path (--data), or use '{EMBEDDED_IMAGES}'.")
    options = dict(max_examples=max_examples, seed=seed, image_size=image_size)
    if is_idx_path(p):
        pixels, raws = read_idx_pair(p)
        return from_arrays(pixels, raws, name=p.name, source=str(p), **options)
    if image_sources.is_saved_dataset(p):
        listing = image_sources.list_saved_dataset(p, image_column=image_column, label_column=label_column,
                                                   split=split)
    elif p.is_dir():
        listing = image_sources.list_image_folder(p)
    else:
        listing = image_sources.list_table(p, image_column=image_column, label_column=label_column)
    return _from_listing(listing, label_column=label_column, **options)


def is_image_config(data_cfg) -> bool:
    """:func:`is_image_data` for a :class:`dpaudit.config.DataConfig`."""
    return is_image_data(data_cfg.path, modality=data_cfg.modality, image_column=data_cfg.image_column,
                         text_column=data_cfg.text_column)


def load_configured_images(cfg) -> ImageDataset:
    """The image dataset of a resolved config (``cfg.data``, seeded by ``cfg.train.seed``): the counterpart of
    :func:`dpaudit.data.load_configured_dataset`, so every command reads the same N images."""
    d = cfg.data
    return load_image_dataset(d.path, label_column=d.label_column, image_column=d.image_column, split=d.split,
                              max_examples=d.max_examples, seed=cfg.train.seed, image_size=d.image_size)
