"""Attacks on the canary directory of ``dpaudit canaries make`` and on ``dpaudit audit --canaries DIR``.

The bound is a theorem only if the coins are dpaudit's fair coins, secret, and the canaries scored are the
ones the coins were drawn for. Each test is the mutant that would break that: an edited ``canaries.json``
(a label or text changed after the coins were drawn), an edited inclusion file (coins flipped to fit the
scores), an inclusion file from another ``make``, a run directory reused with another DIR, coins drawn from
the public seed, coins that leak into a public file; and bad inputs give one line, exit 2.
"""

from __future__ import annotations

import json
import shutil
import stat

import numpy as np
import pytest

from dpaudit.canary_dir import draw_inclusion, read_canary_dir
from tests.cli._helpers import assert_one_error_line, run_cli, save_tiny_model, write_csv
from tests.cli._targets import save_classifier


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    from dpaudit.cli.main import main

    root = tmp_path_factory.mktemp("canary-attacks")
    data = write_csv(root / "train.csv", 120)
    for name in ("a", "b"):
        assert main(["canaries", "make", "--data", str(data), "--count", "40", "--out", str(root / name)]) == 0
    backbone = save_tiny_model(root / "bert")
    texts = [f"w{i}" for i in range(8)]
    two = save_classifier(root / "hf2", backbone, texts, np.arange(8) % 2, np.ones(8, bool), steps=1)
    three = save_classifier(root / "hf3", backbone, texts, np.arange(8) % 3, np.ones(8, bool), num_labels=3,
                            steps=1)
    return {"root": root, "data": data, "a": root / "a", "b": root / "b", "hf": two, "hf3": three}


def _copy(world, tmp_path, name="a"):
    return shutil.copytree(world[name], tmp_path / name)


def _audit(capsys, target, canaries, run_dir, *extra):
    return run_cli(capsys, ["audit", "--target", str(target), "--canaries", str(canaries), "--run-dir",
                            str(run_dir), "--set", "data.max_length=16", "--format", "none", "--quiet", *extra])


def test_an_intact_directory_audits(world, tmp_path, capsys):
    code, _, err = _audit(capsys, world["hf"], world["a"], tmp_path / "run")
    assert code == 0, err


def test_an_edited_canary_label_is_refused(world, tmp_path, capsys):
    d = _copy(world, tmp_path)
    doc = json.loads((d / "canaries.json").read_text())
    doc["canaries"][0]["label"] = 1 - doc["canaries"][0]["label"]  # still a valid document
    (d / "canaries.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    code, _, err = _audit(capsys, world["hf"], d, tmp_path / "run")
    assert code == 2
    assert_one_error_line(err, "canaries.json", "was changed")


def test_flipped_coins_are_refused(world, tmp_path, capsys):
    d = _copy(world, tmp_path)
    secret = json.loads((d / "inclusion.json").read_text())
    secret["included"][0] = 1 - secret["included"][0]
    (d / "inclusion.json").write_text(json.dumps(secret))
    code, _, err = _audit(capsys, world["hf"], d, tmp_path / "run")
    assert code == 2
    assert_one_error_line(err, "inclusion.json", "coins")


def test_an_inclusion_file_from_another_make_is_refused(world, tmp_path, capsys):
    d = _copy(world, tmp_path)
    shutil.copy(world["b"] / "inclusion.json", d / "inclusion.json")
    code, _, err = _audit(capsys, world["hf"], d, tmp_path / "run")
    assert code == 2
    assert_one_error_line(err, "another `dpaudit canaries make` run")


def test_a_run_directory_is_bound_to_its_canary_directory(world, tmp_path, capsys):
    code, _, err = _audit(capsys, world["hf"], world["a"], tmp_path / "run")
    assert code == 0, err
    before = (tmp_path / "run" / "audit.json").read_bytes()
    code, _, err = _audit(capsys, world["hf"], world["b"], tmp_path / "run")
    assert code == 2
    assert_one_error_line(err)
    assert (tmp_path / "run" / "audit.json").read_bytes() == before  # finished work kept


def test_coins_are_not_drawn_from_the_seed_and_are_fair():
    runs = [draw_inclusion(256) for _ in range(2)]
    assert not np.array_equal(*runs)  # P = 2^-256 for a CSPRNG; a seeded draw would repeat
    many = draw_inclusion(200_000)
    assert abs(many.mean() - 0.5) < 0.005  # 4.5 standard deviations


def test_the_public_file_does_not_depend_on_the_coins(world):
    """Same data and seed, independent coins: canaries.json differs only in run_id and the keyed commitment."""
    docs = [json.loads((world[n] / "canaries.json").read_text()) for n in ("a", "b")]
    assert not np.array_equal(read_canary_dir(world["a"]).included, read_canary_dir(world["b"]).included)
    for doc in docs:
        del doc["run_id"], doc["inclusion_commitment"]
    assert docs[0] == docs[1]
    assert stat.S_IMODE((world["a"] / "inclusion.json").stat().st_mode) == 0o600


def _make(capsys, world, tmp_path, *args):
    return run_cli(capsys, ["canaries", "make", "--data", str(world["data"]), "--out", str(tmp_path / "new"),
                            *args])


@pytest.mark.parametrize("args, fragments", [
    (["--count", "100"], ["100 mislabeled canaries", "more than half"]),
    (["--count", "10", "--kind", "famous"], ["unknown canary kind 'famous'"]),
    (["--count", "0"], ["count must be ≥ 1"]),
    (["--count", "10", "--label-column", "stars"], ["no column(s) ['stars']"]),
])
def test_make_bad_inputs_are_one_line(world, tmp_path, capsys, args, fragments):
    code, _, err = _make(capsys, world, tmp_path, *args)
    assert code == 2
    assert_one_error_line(err, *fragments)
    assert not (tmp_path / "new").exists()  # refused before anything is written


def test_make_refuses_a_used_directory(world, tmp_path, capsys):
    code, _, err = run_cli(capsys, ["canaries", "make", "--data", str(world["data"]), "--count", "10",
                                    "--out", str(world["a"])])
    assert code == 2
    assert_one_error_line(err, "not an empty directory")


@pytest.mark.parametrize("case, fragments", [
    ("missing", ["canary directory", "does not exist"]),
    ("labels", ["3 labels", "2 classes"]),
    ("no-target", ["give it as --target"]),
    ("members", ["remove --target-members"]),
    ("reference", ["no non-private reference"]),
])
def test_audit_bad_inputs_are_one_line(world, tmp_path, capsys, case, fragments):
    target, canaries, extra = world["hf"], world["a"], []
    if case == "missing":
        canaries = tmp_path / "nowhere"
    elif case == "labels":
        target = world["hf3"]
    elif case == "reference":
        extra = ["--reference", "non-private"]
    elif case == "members":
        (tmp_path / "ids.json").write_text("[0, 1]")
        extra = ["--target-members", str(tmp_path / "ids.json")]
    if case == "no-target":
        code, _, err = run_cli(capsys, ["audit", "--canaries", str(canaries), "--run-dir", str(tmp_path / "run")])
    else:
        code, _, err = _audit(capsys, target, canaries, tmp_path / "run", *extra)
    assert code == 2
    assert_one_error_line(err, *fragments)


def test_the_section_counts_guesses_like_a_reference():
    """The section's bound from counting the guesses by hand (top k IN, bottom k OUT) and Theorem 3."""
    import torch

    from dpaudit.pipeline.canary_audit import canary_section
    from dpaudit.pipeline.canary_target import label_log_probability
    from dpaudit.privacy.one_run import one_run_epsilon

    rng = np.random.default_rng(3)
    logits, labels = rng.normal(size=(200, 3)) * 3, rng.integers(0, 3, 200)
    scores = label_log_probability(logits, labels)
    reference = torch.log_softmax(torch.as_tensor(logits), 1)[torch.arange(200), torch.as_tensor(labels)].numpy()
    assert np.allclose(scores, reference)
    included = scores + rng.normal(size=200) > np.median(scores)  # a leaky model: IN scores higher
    section = canary_section(scores, included, kind="mislabeled", delta=1e-5, significance=0.05,
                             guess_fraction=0.2, score_rule="loss")
    k = 20
    order = np.argsort(scores)
    correct = int(included[order[-k:]].sum() + (~included[order[:k]]).sum())
    expected = one_run_epsilon(num_correct=correct, num_guesses=2 * k, num_canaries=200, delta=1e-5,
                               significance=0.05 / 1).epsilon_lb
    assert section["guesses_in"] == section["guesses_out"] == k and section["epsilon_lb"]["num_correct"] == correct
    assert section["epsilon_lb"]["epsilon_lb"] == pytest.approx(expected, abs=1e-3) and expected > 0
    assert section["cap"] == pytest.approx(one_run_epsilon(num_correct=2 * k, num_guesses=2 * k, num_canaries=200,
                                                           delta=1e-5, significance=0.05).epsilon_lb)
    assert section["epsilon_lb"]["kind"] == "bound" and section["epsilon_lb"]["epsilon_lb"] <= section["cap"]
