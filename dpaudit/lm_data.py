"""Text corpora for causal-LM fine-tuning: a text column, and optionally a completion column (no labels).

:func:`load_lm_texts` reads a CSV/TSV/JSONL/Parquet file (or ``"embedded"``: the Rotten Tomatoes snippets'
texts) into a :class:`~dpaudit.data.TextDataset` whose ``labels`` are all 0 (one class, never trained on) and
whose ``pairs`` are the completions. Rows with an empty text are dropped; ``max_examples`` keeps the seeded
subset ``sort(default_rng(seed).choice(N, max_examples, replace=False))`` as :func:`dpaudit.data.load_dataset`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dpaudit.data import TextDataset, _content_hash, _table_kind, load_dataset
from dpaudit.errors import DataError


def _read(p: Path):
    import pandas as pd

    kind = _table_kind(p)
    if kind in (".csv", ".tsv"):
        return pd.read_csv(p, sep="\t" if kind == ".tsv" else ",", dtype=str, keep_default_na=False)
    if kind in (".jsonl", ".json"):
        return pd.read_json(p, lines=kind == ".jsonl", dtype=False)
    return pd.read_parquet(p)


def load_lm_texts(path: str | None, *, text_column: str = "text", completion_column: str | None = None,
                  max_examples: int | None = None, seed: int = 0) -> TextDataset:
    """The corpus at ``path`` (see the module docstring). Raises DataError (one line) on a missing column or
    an empty corpus."""
    if path in (None, "", "embedded"):
        ds = load_dataset(path=None, max_examples=max_examples, seed=seed)
        texts, pairs, source, name = ds.texts, None, ds.source, ds.name
    else:
        p = Path(path)
        df = _read(p)
        wanted = [text_column] + ([completion_column] if completion_column else [])
        missing = [c for c in wanted if c not in df.columns]
        if missing:
            raise DataError(f"dataset '{p.name}' has no column(s) {missing}; its columns are "
                            f"{list(map(str, df.columns))[:50]} — set data.text_column / data.completion_column.")
        df = df[df[text_column].astype(str).str.strip() != ""]
        if max_examples is not None and max_examples < len(df):
            df = df.iloc[np.sort(np.random.default_rng(seed).choice(len(df), max_examples, replace=False))]
        texts = tuple(df[text_column].astype(str).tolist())
        pairs = tuple(df[completion_column].astype(str).tolist()) if completion_column else None
        source, name = str(p), p.name
    if len(texts) < 2:
        raise DataError(f"dataset '{name}' has {len(texts)} non-empty text(s); causal-LM training needs at least 2.")
    labels = np.zeros(len(texts), dtype=np.int64)
    return TextDataset(texts, labels, ("text",), name, source, _content_hash(texts, labels, pairs), pairs)


def load_configured_lm_texts(cfg) -> TextDataset:
    """:func:`load_lm_texts` of a resolved config (``cfg.data``, seeded by ``cfg.train.seed``)."""
    d = cfg.data
    return load_lm_texts(d.path, text_column=d.text_column, completion_column=d.completion_column,
                         max_examples=d.max_examples, seed=cfg.train.seed)
