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


# --- saved Hugging Face datasets directories and text pairs ----------------------------------------------------
def _save(tmp_path, columns: dict, *, class_names=None, splits=("train",), name="saved"):
    import datasets

    features = {k: datasets.Value("string") for k in columns if k != "label"}
    features["label"] = (datasets.ClassLabel(names=list(class_names)) if class_names is not None
                         else datasets.Value("int64"))
    ds = datasets.Dataset.from_dict(columns, features=datasets.Features(features))
    path = tmp_path / name
    if splits is None:
        ds.save_to_disk(str(path))
    else:
        datasets.DatasetDict({s: ds for s in splits}).save_to_disk(str(path))
    return path


def test_saved_dataset_selects_the_table_subset(frame, tmp_path, monkeypatch):
    """Same rows, labels and hash as the same data in a CSV (max_examples sampled the same seeded way)."""
    monkeypatch.setattr(data, "CHUNK_ROWS", 7)
    frame.to_csv(tmp_path / "d.csv", index=False)
    texts = [None if pd.isna(t) else t for t in frame["text"]]
    path = _save(tmp_path, {"text": texts, "label": frame["label"].tolist()}, splits=None)
    for max_examples in (40, None):
        saved = load_dataset(path=str(path), max_examples=max_examples, seed=5)
        table = load_dataset(path=str(tmp_path / "d.csv"), max_examples=max_examples, seed=5)
        assert saved.texts == table.texts and saved.sha256 == table.sha256
        assert saved.label_names == table.label_names and np.array_equal(saved.labels, table.labels)
        assert saved.pairs is None


def test_saved_dataset_dict_class_labels_keep_their_names(tmp_path):
    texts = [f"text {i}" for i in range(30)]
    path = _save(tmp_path, {"text": texts, "label": [i % 3 for i in range(29)] + [-1]},
                 class_names=["contradiction", "entailment", "neutral"], splits=("train", "test"))
    ds = load_dataset(path=str(path))
    assert ds.label_names == ("contradiction", "entailment", "neutral")
    assert len(ds) == 29  # label -1 ("no label") is a missing value
    assert ds.labels.tolist() == [i % 3 for i in range(29)] and ds.name == "saved[train]"
    assert load_dataset(path=str(path), split="test").name == "saved[test]"


def test_text_pairs_are_read_hashed_and_pair_encoded(tmp_path):
    from dpaudit.models import embedded_model_dir
    from dpaudit.trainers.batching import EncodedTexts
    from transformers import AutoTokenizer

    premises = [f"premise number {i}" for i in range(20)]
    hyps = [f"hypothesis {i}" for i in range(20)]
    path = _save(tmp_path, {"premise": premises, "hypothesis": hyps, "label": [i % 2 for i in range(20)]},
                 class_names=["no", "yes"])
    ds = load_dataset(path=str(path), text_column="premise", text_pair_column="hypothesis", max_examples=10, seed=1)
    assert ds.pairs is not None and len(ds.pairs) == len(ds.texts) == 10
    assert all(p == "hypothesis " + t.split()[-1] for t, p in zip(ds.texts, ds.pairs))  # rows stay aligned
    single = load_dataset(path=str(path), text_column="premise", max_examples=10, seed=1)
    assert single.texts == ds.texts and single.sha256 != ds.sha256  # the hash covers the second text
    hyps[3] = "changed"
    other = _save(tmp_path, {"premise": premises, "hypothesis": hyps, "label": [i % 2 for i in range(20)]},
                  class_names=["no", "yes"], name="other")
    assert load_dataset(path=str(other), text_column="premise", text_pair_column="hypothesis").sha256 != \
        load_dataset(path=str(path), text_column="premise", text_pair_column="hypothesis").sha256
    tok = AutoTokenizer.from_pretrained(embedded_model_dir())
    enc = EncodedTexts.from_dataset(ds, tok, max_length=8)
    assert list(enc.ids[0]) == tok(ds.texts[0], ds.pairs[0], truncation=True, max_length=8)["input_ids"]
    assert (enc.ids[0] == tok.sep_token_id).sum() == 2 and enc.type_ids[0].max() == 1
    assert EncodedTexts.from_dataset(single, tok, max_length=8).type_ids is None


def test_text_pair_column_in_a_table(tmp_path):
    pd.DataFrame({"a": ["x y", "z", "w"], "b": ["1", "2", "3"], "label": [0, 1, 0]}).to_json(
        tmp_path / "p.jsonl", orient="records", lines=True)
    ds = load_dataset(path=str(tmp_path / "p.jsonl"), text_column="a", text_pair_column="b")
    assert ds.pairs == ("1", "2", "3")
    with pytest.raises(DataError, match="is also the text or label column"):
        load_dataset(path=str(tmp_path / "p.jsonl"), text_column="a", text_pair_column="a")
    with pytest.raises(DataError, match="single texts"):
        load_dataset(path="embedded", text_pair_column="b")


@pytest.mark.parametrize("case", ["classes", "column", "split", "not-a-dataset"])
def test_bad_saved_datasets_are_data_errors(case, tmp_path):
    kwargs = {}
    if case == "classes":
        path = _save(tmp_path, {"text": ["a", "b"], "label": [0, 1]}, class_names=[f"c{i}" for i in range(1001)])
        match = f"1,001 classes.*at most {MAX_CLASSES}"
    elif case == "column":
        path, kwargs, match = _save(tmp_path, {"text": ["a", "b"], "label": [0, 1]}), {"text_pair_column": "h"}, \
            r"no column\(s\) \['h'\].*data.text_pair_column"
    elif case == "split":
        path, kwargs, match = _save(tmp_path, {"text": ["a", "b"], "label": [0, 1]}), {"split": "dev"}, \
            r"no split 'dev'; its splits are \['train'\]"
    else:
        path, match = tmp_path / "plain", "not a saved Hugging Face dataset"
        path.mkdir()
        (path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=match):
        load_dataset(path=str(path), **kwargs)


@pytest.mark.parametrize("pairs", [False, True])
def test_dpaudit_train_on_a_saved_dataset(pairs, tmp_path, capsys):
    """``dpaudit train --data <datasets dir>`` end to end, from the embedded data (and as text pairs)."""
    import json

    from tests.cli._helpers import run_cli, save_tiny_model

    real = load_dataset(path=None, max_examples=80, seed=0)
    columns = {"review": list(real.texts), "label": real.labels.tolist()}
    flags = ["--set", "data.text_column='review'"]
    if pairs:  # a paraphrase-like task: the review and its first half
        columns["half"] = [t[: len(t) // 2] for t in real.texts]
        flags += ["--set", "data.text_pair_column='half'"]
    path = _save(tmp_path, columns, class_names=list(real.label_names), splits=("train", "validation"))
    code, out, err = run_cli(capsys, ["train", "--model", str(save_tiny_model(tmp_path / "m")), "--data", str(path),
                                      *flags, "--epochs", "1", "--batch-size", "16", "--set", "data.max_length=32",
                                      "--epsilon", "8", "--run-dir", str(tmp_path / "r"), "--quiet"])
    assert code == 0, err
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    expected = load_dataset(path=str(path), text_column="review", text_pair_column="half" if pairs else None)
    assert metrics["dataset"] == "saved[train]" and metrics["dataset_sha256"] == expected.sha256
    assert metrics["n_train"] + metrics["n_heldout"] == 80 and metrics["epsilon"] <= 8 + 1e-6
