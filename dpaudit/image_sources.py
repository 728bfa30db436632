"""Where labelled images come from: each reader lists (image reader, raw label) pairs without decoding.

Layouts (docs/images.md):

* **ImageFolder**: a folder of class subfolders (class = subfolder name, classes sorted); image files
  anywhere below a class folder (by suffix, :data:`~dpaudit.image_decode.IMAGE_SUFFIXES`; hidden files and
  other files skipped; linked folders not followed; a linked file must resolve inside the folder).
* **save_to_disk**: a ``datasets`` directory with an ``Image`` column (``data.image_column``) and a
  ``ClassLabel`` or plain label column; the image bytes are read undecoded (``Image(decode=False)``) and
  decoded here, within the limits.
* **table**: a CSV/TSV/Parquet/JSONL file with an image-path column and a label column; paths are relative
  to the table's folder and must stay inside it.

Each lister returns a :class:`Listing`; :mod:`dpaudit.image_data` samples it and decodes what it keeps.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath

from dpaudit import image_decode
from dpaudit.errors import DataError

#: Files whose presence marks a ``save_to_disk`` directory.
SAVED_DATASET_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
_TABLE_KINDS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


@dataclass
class Listing:
    """The population before decoding.

    Attributes:
        readers: per example, a function returning (image bytes, name for messages).
        raws: per example, the raw label value.
        label_names: class names when the source fixes them (ImageFolder, ClassLabel), else None.
        name, source: as in :class:`~dpaudit.image_dataset.ImageDataset`.
        numeric_strings: raw labels are strings that may all be numbers (CSV cells).
    """

    readers: list[Callable[[], tuple[bytes, str]]]
    raws: list
    label_names: tuple[str, ...] | None
    name: str
    source: str
    numeric_strings: bool = False


def check_count(n: int, name: str) -> None:
    """Refuse a population of more than :data:`image_decode.MAX_IMAGES` images (read at call time)."""
    if n > image_decode.MAX_IMAGES:
        raise DataError(f"dataset '{name}' lists {n:,} images, over the limit of {image_decode.MAX_IMAGES:,}; "
                        f"split it or point data.path at a smaller selection.")


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / m).is_file() for m in SAVED_DATASET_MARKERS)


def _file_reader(path: Path, root: Path) -> Callable[[], tuple[bytes, str]]:
    return lambda: (image_decode.read_image_bytes(path, root=root), str(path))


def _class_files(folder: Path, root: Path) -> list[Path]:
    """Image files below one class folder, sorted; linked folders are not followed."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith(".") and f.lower().endswith(image_decode.IMAGE_SUFFIXES):
                found.append(Path(dirpath) / f)
        if len(found) > image_decode.MAX_IMAGES:
            check_count(len(found), root.name)
    return found


def list_image_folder(root: Path) -> Listing:
    """An ImageFolder tree: label i = the i-th class subfolder name in sorted order."""
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.is_symlink() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"folder '{root}' has no class subfolders; put each class's images in a subfolder named "
                        f"after the class (ImageFolder layout), or point data.path at a dataset file.")
    readers, raws = [], []
    for i, cls in enumerate(classes):
        files = _class_files(root / cls, root)
        if not files:
            raise DataError(f"class folder '{root / cls}' holds no image files ({', '.join(image_decode.IMAGE_SUFFIXES[:4])}, "
                            f"…); add its images or remove the folder.")
        readers.extend(_file_reader(f, root) for f in files)
        raws.extend([cls] * len(files))
        check_count(len(readers), root.name)
    return Listing(readers, raws, tuple(classes), root.name, str(root))


def _table_frame(path: Path, columns: list[str]):
    """The two columns of a table file, as strings (CSV/TSV) or stored types (Parquet, JSONL)."""
    import pandas as pd

    kind = next((s for s in reversed([s.lower() for s in path.suffixes]) if s in _TABLE_KINDS), None)
    if kind is None:
        raise DataError(f"data file '{path}' has an unknown format; use .csv, .tsv, .jsonl or .parquet.")
    try:
        if kind in (".csv", ".tsv"):
            sep = "\t" if kind == ".tsv" else ","
            have = list(pd.read_csv(path, sep=sep, nrows=0).columns)
            frame = None if any(c not in have for c in columns) else pd.read_csv(
                path, sep=sep, usecols=columns, dtype=str, nrows=image_decode.MAX_IMAGES + 1)
        elif kind == ".parquet":
            import pyarrow.parquet as pq

            have = pq.ParquetFile(path).schema_arrow.names
            frame = None if any(c not in have for c in columns) else pq.read_table(path, columns=columns).to_pandas()
        else:
            frame = pd.read_json(path, lines=True, dtype=False, nrows=image_decode.MAX_IMAGES + 1)
            have = list(frame.columns)
    except Exception as err:  # pandas and pyarrow raise many types for unreadable files
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise DataError(f"data file '{path}' could not be read ({first}); check its format and encoding.") from None
    missing = [c for c in columns if c not in have]
    if missing:
        raise DataError(f"table '{path.name}' has no column(s) {missing}; its columns are {list(map(str, have))[:50]} "
                        f"— set data.image_column / data.label_column.")
    return frame[columns], kind in (".csv", ".tsv")


def _contained(cell: str, root: Path, table: str) -> Path:
    """The file a path cell names, relative to ``root``; refused when it leaves ``root``."""
    rel = PurePath(cell)
    target = root / rel
    if rel.is_absolute() or ".." in rel.parts or not image_decode.inside(target, root):
        raise DataError(f"table '{table}' names image '{cell[:200]}', outside its folder '{root}'; give image paths "
                        f"relative to the table's folder, without '..' or links out of it.")
    return target


def list_table(path: Path, *, image_column: str, label_column: str) -> Listing:
    """A table with one image path per row (relative to the table's folder); rows missing a value dropped."""
    if image_column == label_column:
        raise DataError(f"data.image_column and data.label_column are both '{image_column}'; name two columns.")
    frame, numeric = _table_frame(path, [image_column, label_column])
    check_count(len(frame), path.name)
    frame = frame.dropna()
    root = path.parent
    files = [_contained(str(c), root, path.name) for c in frame[image_column].tolist()]
    raws = [v if numeric else _plain(v) for v in frame[label_column].tolist()]
    return Listing([_file_reader(f, root) for f in files], raws, None, path.name, str(path), numeric_strings=numeric)


def _plain(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _saved(path: Path, split: str):
    import datasets

    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as err:  # many types for a directory that is not one
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise DataError(f"'{path}' is not a readable saved Hugging Face dataset ({first}); point data.path at a "
                        f"directory written by save_to_disk.") from None
    finally:
        if bars:
            datasets.enable_progress_bars()
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"dataset '{path.name}' has no split '{split}'; its splits are {sorted(loaded)[:50]} — "
                            f"set data.split.")
        return loaded[split], f"{path.name}[{split}]"
    return loaded, path.name


def list_saved_dataset(path: Path, *, image_column: str, label_column: str, split: str) -> Listing:
    """A ``save_to_disk`` directory with an ``Image`` column; bytes read undecoded, decoded later with limits."""
    import datasets

    table, name = _saved(path, split)
    missing = [c for c in (image_column, label_column) if c not in table.column_names]
    if missing:
        raise DataError(f"dataset '{name}' has no column(s) {missing}; its columns are {table.column_names[:50]} — "
                        f"set data.image_column / data.label_column.")
    if not isinstance(table.features[image_column], datasets.Image):
        raise DataError(f"column '{image_column}' of dataset '{name}' is {type(table.features[image_column]).__name__}, "
                        f"not an Image column; set data.image_column to the image column.")
    check_count(len(table), name)
    feature = table.features[label_column]
    names = tuple(str(n) for n in feature.names) if isinstance(feature, datasets.ClassLabel) else None
    table = table.select_columns([image_column, label_column]).cast_column(image_column, datasets.Image(decode=False))
    labels = table[label_column]
    keep = [i for i, v in enumerate(labels) if v is not None and not (names is not None and not 0 <= v < len(names))]

    def reader(i: int) -> Callable[[], tuple[bytes, str]]:
        def read() -> tuple[bytes, str]:
            cell = table[i][image_column]
            if not cell or cell.get("bytes") is None:
                raise DataError(f"row {i} of dataset '{name}' holds no image bytes (only a path); save the dataset "
                                f"with the images embedded (datasets embeds them in save_to_disk).")
            return cell["bytes"], f"{name} row {i}"
        return read

    raws = [names[labels[i]] if names is not None else _plain(labels[i]) for i in keep]
    return Listing([reader(i) for i in keep], raws, names, name, str(path))
