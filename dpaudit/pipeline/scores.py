"""A black-box target: a file of its per-example outputs on the population.

Formats (decided here, documented in the README):

* ``.npy``: a float array of shape (N, C); row i is example i of the population (in ``dpaudit``'s
  population order, the ids ``--target-members`` uses). No pickles.
* ``.csv`` / ``.parquet``: an integer ``id`` column (the example's index in the population) and one column
  per class, in the dataset's class order (C columns besides ``id``), plus optionally a ``text`` column: the
  example's text, checked against the population's (a file scored on another population or order —
  other data, ``max_examples`` or seed — is refused instead of being audited against the wrong members).

``target.scores_kind`` says whether the values are logits or class probabilities (probabilities are turned
into log-probabilities, which the attacks treat as logits). Every id in [0, N) must appear exactly once;
non-finite values, a wrong class count, probabilities outside [0, 1] and ids outside the population are
refused with one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dpaudit.errors import DataError
from dpaudit.input_limits import format_bytes

SCORE_SUFFIXES = (".npy", ".csv", ".parquet")
_MAX_BYTES = 4 << 30


def _table(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(ids, values, texts or None)`` of a CSV or Parquet scores file."""
    import pandas as pd

    try:
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except Exception as err:  # pandas/pyarrow raise many types for a malformed file
        raise DataError(f"scores file '{path}' is unreadable ({type(err).__name__}: {str(err)[:200]}).") from None
    if "id" not in frame.columns:
        raise DataError(f"scores file '{path}' has no 'id' column; give an integer id column (the example's index "
                        f"in the population) and one column per class.")
    ids = frame.pop("id")
    texts = None
    if "text" in frame.columns:  # an empty cell reads as NaN: compared as an empty text
        texts = np.asarray(["" if pd.isna(t) else str(t) for t in frame.pop("text")], dtype=object)
    if not pd.api.types.is_integer_dtype(ids.dtype) or pd.api.types.is_bool_dtype(ids.dtype):
        raise DataError(f"the 'id' column of scores file '{path}' must hold integers (the example's index in the "
                        f"population), got {str(ids.dtype)[:40]} values{f' such as {str(ids.iloc[0])[:40]!r}' if len(ids) else ''}.")
    try:
        values = frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"scores file '{path}' holds non-numeric class columns; every column besides 'id' (and "
                        f"'text') must be a number.") from None
    return ids.to_numpy(dtype=np.int64), values, texts


def _check_texts(path: Path, ids: np.ndarray, texts: np.ndarray, population: list[str]) -> None:
    """Refuse a scores file whose ``text`` column differs from the population's text at the same id."""
    wrong = [i for i, (j, t) in enumerate(zip(ids, texts)) if t.strip() != str(population[j]).strip()]
    if wrong:
        i = wrong[0]
        raise DataError(f"scores file '{path}': {len(wrong)} of {len(ids)} rows name another text than the "
                        f"population's example with their id (e.g. id {int(ids[i])}: {texts[i][:40]!r}); the scores "
                        f"were computed on another population or order — use the target's data, data.max_examples "
                        f"and train.seed.")


def _ordered(path: Path, ids: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """``values`` reordered so that row i is example i; every id in [0, n) exactly once."""
    outside = ids[(ids < 0) | (ids >= n)]
    if outside.size:
        raise DataError(f"scores file '{path}' has ids outside the population [0, {n}) (e.g. {int(outside[0])}); "
                        f"ids are indices into the audited dataset (check data.path and data.max_examples).")
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"scores file '{path}' has duplicate ids (e.g. {int(uniq[counts > 1][0])}); give each "
                        f"example's scores once.")
    if uniq.size != n:
        missing = np.setdiff1d(np.arange(n), uniq)
        raise DataError(f"scores file '{path}' has no scores for {missing.size} of the {n} examples (e.g. id "
                        f"{int(missing[0])}); score the whole population.")
    out = np.empty_like(values)
    out[ids] = values
    return out


def read_scores(path: str | Path, *, n: int, num_classes: int, kind: str,
                texts: list[str] | None = None) -> np.ndarray:
    """The target's logits (N, C) float32 from a scores file (see the module docstring); ``texts``: the
    population's, checked against a ``text`` column.

    Raises:
        DataError: missing, unreadable, wrong shape or class count, missing/duplicate/outside ids, NaN/inf,
            probabilities outside [0, 1], or texts that are not the population's.
    """
    p = Path(path)
    if not p.is_file() or p.suffix.lower() not in SCORE_SUFFIXES:
        raise DataError(f"scores file '{p}' does not exist or is not one of {', '.join(SCORE_SUFFIXES)}.")
    if p.stat().st_size > _MAX_BYTES:
        raise DataError(f"scores file '{p}' is larger than {format_bytes(_MAX_BYTES)}; give the target's scores on "
                        f"the population only.")
    if p.suffix.lower() == ".npy":
        try:
            values = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise DataError(f"scores file '{p}' is not a plain .npy array ({str(err)[:200]}).") from None
        if values.ndim != 2 or values.dtype.kind not in "fiu":
            raise DataError(f"scores file '{p}' must hold a numeric (N, C) array, got shape {values.shape} "
                            f"dtype {values.dtype}.")
        if len(values) != n:
            raise DataError(f"scores file '{p}' has {len(values)} rows; the population has N={n} (row i = example i).")
        values = values.astype(np.float64)
    else:
        ids, values, file_texts = _table(p)
        values = _ordered(p, ids, values, n)
        if file_texts is not None and texts is not None:
            _check_texts(p, ids, file_texts, texts)
    return _as_logits(p, values, num_classes, kind)


def _as_logits(p: Path, values: np.ndarray, num_classes: int, kind: str) -> np.ndarray:
    if values.shape[1] != num_classes:
        raise DataError(f"scores file '{p}' has {values.shape[1]} class columns; the dataset has {num_classes} "
                        f"classes (one column per class, in the dataset's class order).")
    if not np.isfinite(values).all():
        raise DataError(f"scores file '{p}' holds NaN or infinite values; give finite scores for every example.")
    if kind == "probabilities":
        if values.min() < 0 or values.max() > 1:
            raise DataError(f"scores file '{p}' holds values outside [0, 1] but target.scores_kind = "
                            f"'probabilities'; set target.scores_kind = 'logits' if they are logits.")
        values = np.log(np.clip(values, 1e-30, 1.0))
    return values.astype(np.float32)
