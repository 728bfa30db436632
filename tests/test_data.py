"""``dpaudit.data``: streamed loading selects the same examples as reading everything, in every format."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import dpaudit.data as data
from dpaudit.data import MAX_CLASSES, _content_hash, load_dataset
from dpaudit.errors import DataError


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    words = np.array(["good", "bad", "film", "plot", "a, b", 'said "no"'])
    texts = [" ".join(rng.choice(words, 4)) for _ in range(500)]
    df = pd.DataFrame({"text": texts, "label": rng.integers(0, 12, 500)})
    df.loc[[3, 77, 401], "text"] = None  # dropped rows shift the population's indices
    return df


def _reference(df: pd.DataFrame, max_examples: int, seed: int) -> tuple[tuple[str, ...], str]:
    """What reading the whole file and then sampling selects (the pre-streaming behaviour)."""
    df = df.dropna()
    values = sorted(set(df["label"].tolist()))
    labels = np.array([values.index(v) for v in df["label"]], dtype=np.int64)
    idx = np.sort(np.random.default_rng(seed).choice(len(df), size=max_examples, replace=False))
    texts = [df["text"].iloc[i] for i in idx]
    return tuple(str(v) for v in values), _content_hash(texts, labels[idx])


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "jsonl", "parquet"])
@pytest.mark.parametrize("chunk", [7, 100_000])
def test_streamed_subset_is_the_full_read_subset(fmt, chunk, frame, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CHUNK_ROWS", chunk)
    path = tmp_path / f"d.{fmt}"
    if fmt.startswith("csv"):
        frame.to_csv(path, index=False)
    elif fmt == "jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path)
    names, sha = _reference(frame, 40, seed=5)
    ds = load_dataset(path=str(path), max_examples=40, seed=5)
    assert (ds.label_names, ds.sha256, len(ds)) == (names, sha, 40)
    assert ds.label_names[:3] == ("0", "1", "2") and ds.label_names[-1] == "11"  # numeric order, not "10" < "2"
    full = load_dataset(path=str(path), max_examples=10_000)
    assert len(full) == 497


def test_string_labels_and_tsv(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("text\tlabel\n" + "".join(f"t {i}\t{'pos' if i % 3 else 'neg'}\n" for i in range(30)))
    ds = load_dataset(path=str(path))
    assert ds.label_names == ("neg", "pos") and len(ds) == 30


def test_class_cap(tmp_path):
    ok = tmp_path / "ok.csv"
    ok.write_text("text,label\n" + "".join(f"t {i},{i}\n" for i in range(MAX_CLASSES)))
    assert load_dataset(path=str(ok)).num_classes == MAX_CLASSES
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\n" + "".join(f"t {i},{i}\n" for i in range(MAX_CLASSES + 1)))
    with pytest.raises(DataError, match=f"more than {MAX_CLASSES} distinct labels"):
        load_dataset(path=str(bad))


def test_missing_column_in_jsonl_and_parquet(frame, tmp_path):
    frame.rename(columns={"label": "y"}).to_parquet(tmp_path / "d.parquet")
    with pytest.raises(DataError, match=r"no column\(s\) \['label'\]"):
        load_dataset(path=str(tmp_path / "d.parquet"))
    frame.rename(columns={"label": "y"}).to_json(tmp_path / "d.jsonl", orient="records", lines=True)
    with pytest.raises(DataError, match=r"no column\(s\) \['label'\]"):
        load_dataset(path=str(tmp_path / "d.jsonl"))


def test_tokenizer_budget_keeps_the_tokens_of_real_text():
    from transformers import AutoTokenizer

    from dpaudit.models import embedded_model_dir
    from dpaudit.trainers.batching import CHARS_PER_TOKEN, EncodedTexts

    tok = AutoTokenizer.from_pretrained(embedded_model_dir(), trust_remote_code=False)
    texts = list(load_dataset(path=None, max_examples=200, seed=1).texts)
    texts.append(" ".join(texts))  # one long text: cut to 16 * CHARS_PER_TOKEN characters first
    enc = EncodedTexts.from_texts(texts, tok, max_length=16)
    full = tok(texts, truncation=True, max_length=16)["input_ids"]
    assert [x.tolist() for x in enc.ids] == full
    assert len(texts[-1]) > 16 * CHARS_PER_TOKEN
