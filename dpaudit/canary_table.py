"""``dpaudit canaries make``: the user's training file with the included canaries mixed in, every column kept.

The input is read twice: as dpaudit's population (:func:`dpaudit.data.load_dataset`: rows with a missing
text/label dropped, labels as class indices) to make the canaries (:func:`dpaudit.canaries.make_canaries`),
and whole, every column, to write the output in the same format (CSV, TSV, JSONL, Parquet — a compressed
input is written uncompressed — or a saved Hugging Face ``datasets`` directory, written as one with the same
features). A mislabeled canary is its source row (all columns) with the label cell set to the new class's
value as the file spells it; the source row itself leaves the file (IN: it comes back mislabeled; OUT: it is
gone). A unique canary is a new row: its text(s) and label, the other columns empty. The included canaries
are put at uniformly random places among the natural rows, whose order is kept.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dpaudit.canaries import make_canaries
from dpaudit.canary_dir import draw_inclusion, write_canary_dir
from dpaudit.errors import DataError
from dpaudit.fileio import write_bytes_atomic

__all__ = ["MadeCanaries", "make_canary_dir"]

_SUFFIX = {".csv": ".csv", ".tsv": ".tsv", ".jsonl": ".jsonl", ".json": ".jsonl", ".parquet": ".parquet"}


@dataclass(frozen=True)
class MadeCanaries:
    train_path: Path
    canaries_path: Path
    inclusion_path: Path
    n_natural: int
    n_included: int
    count: int


def _read_whole(path: Path, split: str):
    """``(frame with every column, kind, HF features or None)``; kind is a table suffix or ``"hf"``."""
    import pandas as pd

    from dpaudit.data import _table_kind

    if path.is_dir():
        import datasets

        loaded = datasets.load_from_disk(str(path))
        if isinstance(loaded, datasets.DatasetDict):
            loaded = loaded[split]
        return loaded.to_pandas(), "hf", loaded.features
    kind = _table_kind(path)
    if kind in (".csv", ".tsv"):
        return pd.read_csv(path, sep="\t" if kind == ".tsv" else ",", dtype=str), kind, None
    if kind in (".jsonl", ".json"):
        return pd.read_json(path, lines=True, dtype=False), kind, None
    return pd.read_parquet(path), kind, None


def _valid_rows(df, ds, columns: tuple[str, ...]) -> np.ndarray:
    """File row of each population row (the rows with every used column present), checked text by text."""
    rows = np.flatnonzero(df[list(columns)].notna().all(axis=1).to_numpy())
    texts = df[columns[0]].to_numpy()
    if len(rows) != len(ds) or any(str(texts[r]) != t for r, t in zip(rows, ds.texts)):
        raise DataError("the data file read whole does not give the rows dpaudit reads; give a plain "
                        "CSV/TSV/JSONL/Parquet file or saved dataset without duplicate column names.")
    return rows


def _label_values(df, ds, rows: np.ndarray, label_column: str, hf: bool) -> list:
    """The cell value of each class as the file spells it (its first row of that class; a ClassLabel index)."""
    values = []
    cells = df[label_column].to_numpy()
    for c in range(ds.num_classes):
        hit = np.flatnonzero(ds.labels == c)
        if hf and not hit.size:
            values.append(c)
        else:
            values.append(cells[rows[hit[0]]])
    return values


def _canary_frame(df, canaries, rows: np.ndarray, values: list, columns: tuple[str, ...]):
    """One frame row per canary, the file's columns: the source row relabelled, or a new row."""
    import pandas as pd

    text_column, label_column = columns[:2]
    if canaries.kind == "mislabeled":
        out = df.iloc[rows[canaries.source_index]].copy().reset_index(drop=True)
    else:
        out = pd.DataFrame({c: pd.Series([None] * len(canaries), dtype=object) for c in df.columns})
        out[text_column] = list(canaries.texts)
        if len(columns) > 2:
            out[columns[2]] = list(canaries.pairs)
    out[label_column] = pd.Series([values[int(y)] for y in canaries.labels], dtype=object)
    return out


def _mixed(natural, canary_rows):
    """Natural rows in order with the canary rows at uniformly random places (positions from the CSPRNG)."""
    import os

    import pandas as pd

    rng = np.random.default_rng(int.from_bytes(os.urandom(16), "little"))
    total = len(natural) + len(canary_rows)
    at = np.zeros(total, dtype=bool)
    at[rng.choice(total, size=len(canary_rows), replace=False)] = True
    order = np.empty(total, dtype=np.int64)
    order[~at] = np.arange(len(natural))
    order[at] = len(natural) + rng.permutation(len(canary_rows))
    both = pd.concat([natural.reset_index(drop=True), canary_rows], ignore_index=True)
    if len(canary_rows):  # concat can turn a column object; keep the user's dtypes where they still fit
        both = both.astype({c: natural[c].dtype for c in natural.columns if natural[c].dtype != object},
                           errors="ignore")
    return both.iloc[order].reset_index(drop=True)


def _write(frame, out: Path, kind: str, features) -> Path:
    if kind == "hf":
        import datasets

        target = out / "train"
        datasets.Dataset.from_pandas(frame, features=features, preserve_index=False).save_to_disk(str(target))
        for f in target.rglob("*"):
            f.chmod(0o600 if f.is_file() else 0o700)
        target.chmod(0o700)
        return target
    path = out / f"train{_SUFFIX[kind]}"
    if kind in (".csv", ".tsv"):
        data = frame.to_csv(index=False, sep="\t" if kind == ".tsv" else ",").encode("utf-8")
    elif kind == ".parquet":
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        data = buf.getvalue()
    else:
        data = frame.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8")
    return write_bytes_atomic(path, data, private=True)


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"'{out}' exists and is not an empty directory; give a new --out directory (a canary "
                        f"directory is written once: its coins must never be drawn twice).")
    out.mkdir(parents=True, exist_ok=True, mode=0o700)


def make_canary_dir(data: str, out: str, count: int, kind: str = "mislabeled", *, text_column: str = "text",
                    label_column: str = "label", text_pair_column: str | None = None, split: str = "train",
                    seed: int = 0) -> MadeCanaries:
    """Make ``count`` canaries of ``kind`` from ``data``, draw their coins, write the directory ``out``.

    Raises:
        DataError: unreadable data, a ``count`` the data cannot give, an unknown kind, a non-empty ``out``.
    """
    from dpaudit.data import load_dataset

    out_dir = Path(out)
    ds = load_dataset(path=data, text_column=text_column, label_column=label_column,
                      text_pair_column=text_pair_column, split=split)
    natural, canaries = make_canaries(ds, count, kind, seed=seed)  # refuses before any file is written
    columns = (text_column, label_column) + (() if text_pair_column is None else (text_pair_column,))
    df, file_kind, features = _read_whole(Path(data), split)
    rows = _valid_rows(df, ds, columns)
    canary_rows = _canary_frame(df, canaries, rows, _label_values(df, ds, rows, label_column, file_kind == "hf"),
                                columns)
    included = draw_inclusion(len(canaries))
    removed = rows[canaries.source_index] if canaries.kind == "mislabeled" else np.zeros(0, dtype=np.int64)
    keep = np.setdiff1d(np.arange(len(df)), removed)
    frame = _mixed(df.iloc[keep], canary_rows[included].reset_index(drop=True))
    _check_out(out_dir)
    train = _write(frame, out_dir, file_kind, features)
    file_rows = [int(r) for r in removed] if canaries.kind == "mislabeled" else None  # input rows: public
    header = {"source": {"name": ds.name, "sha256": ds.sha256, "n_examples": len(ds)}, "seed": int(seed),
              "columns": {"text": text_column, "label": label_column, "text_pair": text_pair_column},
              "train_file": train.name}
    public, private = write_canary_dir(out_dir, canaries, included, label_names=ds.label_names,
                                       n_natural=len(natural), header=header, file_rows=file_rows)
    return MadeCanaries(train, public, private, len(natural), int(included.sum()), len(canaries))
