"""``dpaudit canaries make`` → train with the Hugging Face Trainer on DIR's training file → ``dpaudit audit
--target MODEL --canaries DIR``: the canary bound of a model trained anywhere is of kind "bound"."""

from __future__ import annotations

import json
import stat

import numpy as np
import pandas as pd
import pytest

from dpaudit.canary_dir import read_canary_dir
from dpaudit.report_io import load_report
from tests.cli._canary_world import make_canaries, tiny_world, train_on
from tests.cli._helpers import run_cli


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    capsys = _NullCapture()
    return tiny_world(tmp_path_factory.mktemp("canary-world"), capsys)


class _NullCapture:
    """A stand-in for pytest's ``capsys`` in a module fixture (nothing to capture there)."""

    def readouterr(self):
        return type("Captured", (), {"out": "", "err": ""})()


def _audit(capsys, world, run_dir, *extra):
    return run_cli(capsys, ["audit", "--target", str(world["model"]), "--canaries", str(world["dir"]),
                            "--run-dir", str(run_dir), "--set", "data.max_length=16", "--format", "md", "--quiet",
                            *extra])


def test_round_trip_gives_a_bound_not_an_estimate(world, tmp_path, capsys):
    code, out, err = _audit(capsys, world, tmp_path / "run")
    assert code == 0, err
    report = load_report(tmp_path / "run" / "audit.json")  # validates against the schema
    section, cdir = report.canaries, read_canary_dir(world["dir"])
    assert section["count"] == 60 and section["kind"] == "mislabeled"
    assert section["guesses_in"] == section["guesses_out"] == 3 and section["score_rule"] == "loss"
    assert section["epsilon_lb"]["kind"] == "bound" and section["epsilon_lb"]["experiment"] == "one_run"
    assert section["epsilon_lb"]["n_in"] == int(cdir.included.sum()) and section["cap"] > 0
    assert report.canary["kind"] == "bound" and report.attacks == ()
    assert report.run.target["canaries"] == "canaries" and report.run.dataset["n_population"] == 60
    assert report.privacy.claim_source == "none"  # no claim stated: audited as not private
    line = next(x for x in out.splitlines() if x.startswith("Canaries recognised"))
    assert "60 mislabeled canaries" in line and "estimate" not in line
    # utility: accuracy on the OUT canaries' original labels (rows that never entered the training file)
    assert report.utility.n_eval == int((~cdir.included).sum())


def test_the_training_file_keeps_the_users_rows_and_holds_exactly_the_included_canaries(world):
    cdir = read_canary_dir(world["dir"])
    original = pd.read_csv(world["data"], dtype=str)
    train = pd.read_csv(world["dir"] / "train.csv", dtype=str)
    assert list(train.columns) == list(original.columns)
    assert len(train) == cdir.n_natural + int(cdir.included.sum()) == cdir.n_train
    pairs = set(zip(train["text"], train["label"]))
    names = cdir.label_names
    for i, text in enumerate(cdir.canaries.texts):
        assert ((text, names[cdir.canaries.labels[i]]) in pairs) == bool(cdir.included[i])
        # the source row with its true label has left the file, IN or OUT
        assert (text, names[cdir.canaries.original_labels[i]]) not in pairs
    assert stat.S_IMODE((world["dir"] / "train.csv").stat().st_mode) == 0o600


def test_the_coins_are_in_no_output_but_the_inclusion_file(world, tmp_path, capsys):
    code, out, err = _audit(capsys, world, tmp_path / "run")
    assert code == 0, err
    secret = json.loads((world["dir"] / "inclusion.json").read_text())
    assert stat.S_IMODE((world["dir"] / "inclusion.json").stat().st_mode) == 0o600
    coins = json.dumps(secret["included"])
    outputs = [world["dir"] / "canaries.json", *sorted((tmp_path / "run").iterdir())]
    for path in outputs:
        text = path.read_text()
        assert secret["salt"] not in text and coins not in text and coins.replace(" ", "") not in text, path.name
    assert secret["salt"] not in out + err
    doc = json.loads((world["dir"] / "canaries.json").read_text())
    assert all(set(c) == {"population_id", "text", "label", "label_name", "source_row", "original_label",
                          "file_row"} for c in doc["canaries"])


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_make_writes_the_inputs_format_with_its_columns(tmp_path, capsys, suffix):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"review": [f"text number {i} " + " ".join(rng.choice(list("abcdefghij"), 5))
                                     for i in range(60)],
                          "stars": [int(i % 3) for i in range(60)], "user": [f"u{i}" for i in range(60)]})
    path = tmp_path / f"data{suffix}"
    frame.to_json(path, orient="records", lines=True) if suffix == ".jsonl" else frame.to_parquet(path)
    make_canaries(capsys, path, tmp_path / "dir", "--count", "20", "--text-column", "review",
                  "--label-column", "stars")
    out = tmp_path / "dir" / f"train{suffix}"
    train = pd.read_json(out, lines=True) if suffix == ".jsonl" else pd.read_parquet(out)
    cdir = read_canary_dir(tmp_path / "dir")
    assert list(train.columns) == ["review", "stars", "user"] and len(train) == cdir.n_train
    assert set(train["stars"].tolist()) <= {0, 1, 2}  # labels written as the file spells them (ints)
    inside = set(zip(train["review"], train["stars"].astype(str)))
    for i, text in enumerate(cdir.canaries.texts):
        assert ((text, cdir.label_names[cdir.canaries.labels[i]]) in inside) == bool(cdir.included[i])


def test_unique_canaries_are_new_rows(tmp_path, capsys):
    from tests.cli._helpers import write_csv

    data = write_csv(tmp_path / "d.csv", 80)
    make_canaries(capsys, data, tmp_path / "dir", "--count", "20", "--kind", "unique")
    cdir = read_canary_dir(tmp_path / "dir")
    train = pd.read_csv(tmp_path / "dir" / "train.csv", dtype=str)
    assert cdir.n_natural == 80 and len(train) == 80 + int(cdir.included.sum())
    assert (cdir.canaries.source_index == -1).all()


@pytest.mark.slow
def test_full_fine_tune_of_minilm_leaks_a_positive_bound(tmp_path, capsys):
    """Non-private full fine-tune of the embedded MiniLM (200 natural rows + 100 mislabeled canaries, 8 epochs,
    AdamW 1e-4, batch 16, 32 tokens): the canaries show ε_LB > 0 (measured: AUC 0.94, ε_LB 1.20, 19/20 guesses
    right, cap 1.69; ≈ 80 s of one core)."""
    from dpaudit.data import load_embedded_default

    ds = load_embedded_default(max_examples=300, seed=0)
    data = tmp_path / "reviews.csv"
    pd.DataFrame({"text": ds.texts, "label": [ds.label_names[i] for i in ds.labels]}).to_csv(data, index=False)
    make_canaries(capsys, data, tmp_path / "dir", "--count", "100")
    model = train_on(capsys, tmp_path / "dir" / "train.csv", tmp_path / "target", None, "--epochs", "8",
                     "--batch-size", "16", "--lr", "1e-4", "--max-length", "32")
    code, out, err = run_cli(capsys, ["audit", "--target", str(model), "--canaries", str(tmp_path / "dir"),
                                      "--run-dir", str(tmp_path / "run"), "--set", "data.max_length=32",
                                      "--set", "audit.canary_guess_fraction=0.2", "--format", "none", "--quiet"])
    assert code == 0, err
    section = load_report(tmp_path / "run" / "audit.json").canaries
    assert section["epsilon_lb"]["kind"] == "bound" and section["epsilon_lb"]["epsilon_lb"] > 0, section


def test_a_scores_file_of_the_same_model_gives_the_same_bound(world, tmp_path, capsys):
    """Black box: the model's logits on the canaries (canaries.json order) as .npy give the HF dir's section."""
    from tests.cli._targets import logits_of

    cdir = read_canary_dir(world["dir"])
    np.save(tmp_path / "scores.npy", logits_of(world["model"], list(cdir.canaries.texts)))
    code, _, err = _audit(capsys, world, tmp_path / "hf-run")
    assert code == 0, err
    code, _, err = run_cli(capsys, ["audit", "--target", str(tmp_path / "scores.npy"), "--canaries",
                                    str(world["dir"]), "--run-dir", str(tmp_path / "run"), "--format", "none"])
    assert code == 0, err
    hf, scores = (load_report(tmp_path / d / "audit.json").canaries for d in ("hf-run", "run"))
    assert scores["epsilon_lb"]["num_correct"] == hf["epsilon_lb"]["num_correct"]
    assert scores["auc"] == pytest.approx(hf["auc"], abs=1e-6) and scores["epsilon_lb"]["kind"] == "bound"


def test_a_saved_hf_dataset_is_written_back_as_one(tmp_path, capsys):
    import datasets

    names = ["neg", "pos"]
    rows = {"text": [f"review {i} " + "good " * (i % 4) + "bad " * (i % 3) for i in range(60)],
            "label": [i % 2 for i in range(60)], "id": list(range(60))}
    features = datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=names),
                                  "id": datasets.Value("int64")})
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "saved"))
    make_canaries(capsys, tmp_path / "saved", tmp_path / "dir", "--count", "20")
    cdir = read_canary_dir(tmp_path / "dir")
    train = datasets.load_from_disk(str(tmp_path / "dir" / "train"))
    assert train.features == features and len(train) == cdir.n_train
    inside = set(zip(train["text"], train["label"]))
    for i, text in enumerate(cdir.canaries.texts):
        assert ((text, int(cdir.canaries.labels[i])) in inside) == bool(cdir.included[i])


def test_a_dpaudit_checkpoint_trained_on_the_file_is_audited_with_its_own_claim(world, tmp_path, capsys):
    """`dpaudit train --data DIR/train.csv` (DP-BiTFiT, ε = 8) → its models.safetensors audited on DIR's
    canaries: a bound, beside the checkpoint's own accounted claim."""
    run = tmp_path / "trained"
    code, _, err = run_cli(capsys, ["train", "--model", str(world["backbone"]), "--data",
                                    str(world["dir"] / "train.csv"), "--epsilon", "8", "--epochs", "1",
                                    "--batch-size", "16", "--set", "data.max_length=16", "--quiet",
                                    "--run-dir", str(run)])
    assert code == 0, err
    code, out, err = run_cli(capsys, ["audit", "--target", str(run / "models.safetensors"), "--canaries",
                                      str(world["dir"]), "--model", str(world["backbone"]), "--set",
                                      "data.max_length=16", "--run-dir", str(tmp_path / "audit"), "--format",
                                      "none", "--quiet"])
    assert code == 0, err
    report = load_report(tmp_path / "audit" / "audit.json")
    trained = json.loads((run / "metrics.json").read_text())  # what `dpaudit train` accounted and printed
    assert report.privacy.claim_source == "checkpoint" and 0 < trained["epsilon"] <= 8.0 + 1e-6
    assert report.privacy.epsilon == pytest.approx(trained["epsilon"], rel=1e-3)
    assert report.privacy.delta == pytest.approx(trained["delta"])
    assert report.canaries["epsilon_lb"]["kind"] == "bound" and report.run.target["kind"] == "checkpoint"
    # another backbone than the checkpoint's: one line, exit 2
    code, _, err = run_cli(capsys, ["audit", "--target", str(run / "models.safetensors"), "--canaries",
                                    str(world["dir"]), "--set", "data.max_length=16", "--run-dir",
                                    str(tmp_path / "audit2"), "--format", "none", "--quiet"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")
