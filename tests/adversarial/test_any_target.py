"""Targets from anywhere, attacked: scores files that lie about their ids, files swapped under a run,
model directories that would run code, and run-directory files edited after dpaudit wrote them."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dpaudit.report_io import load_report
from dpaudit.rundir import sha256_file
from tests.cli._helpers import assert_one_error_line, run_cli
from tests.cli._targets import N, base, make_world, write_table


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_world(tmp_path_factory.mktemp("any-target"))


def test_permuted_ids_are_put_back_in_population_order(tmp_path, capsys, world):
    """Rows of a CSV in another order than the population: row i of the signals must be example i's scores."""
    perm = np.random.default_rng(1).permutation(N)
    scores = write_table(tmp_path / "shuffled.csv", perm, world["logits"][perm])
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, [*base(world), "--target", str(scores), "--non-private", "--run-dir", str(run_dir)])
    assert code == 0, err
    np.testing.assert_allclose(np.load(run_dir / "target_logits.npy"), world["logits"], atol=1e-5)


def test_duplicated_id_hiding_a_missing_one_is_refused(tmp_path, capsys, world, train_steps):
    """N rows, but example 7 twice and example 8 never: a row count check alone would accept it."""
    ids = np.arange(N)
    ids[8] = 7
    scores = write_table(tmp_path / "dup.parquet", ids, world["logits"])
    code, _, err = run_cli(capsys, [*base(world), "--target", str(scores), "--non-private",
                                    "--run-dir", str(tmp_path / "run")])
    assert code == 2
    assert_one_error_line(err, "duplicate ids", "e.g. 7")
    assert not train_steps


def test_scores_swapped_after_signals_were_committed_are_not_reused(tmp_path, capsys, world, train_steps):
    scores = tmp_path / "scores.npy"
    np.save(scores, world["logits"])
    run_dir = tmp_path / "run"
    argv = [*base(world), "--target", str(scores), "--non-private", "--run-dir", str(run_dir)]
    assert run_cli(capsys, argv)[0] == 0
    before = load_report(run_dir / "audit.json").utility.value
    swapped = world["logits"][:, ::-1].copy()  # every prediction flipped
    np.save(scores, swapped)
    train_steps.clear()
    assert run_cli(capsys, argv)[0] == 0
    after = load_report(run_dir / "audit.json")
    labels, member = world["ds"].labels, np.load(run_dir / "membership.npy")[0]
    expected = float((swapped.argmax(1)[~member] == labels[~member]).mean())
    assert after.utility.value == pytest.approx(expected) and after.utility.value != pytest.approx(before)
    assert not train_steps  # the shadows did not depend on the scores
    assert after.run.target["sha256"] == sha256_file(scores)  # the report names the scores it judged


def test_hf_dir_declaring_custom_code_is_refused(tmp_path, capsys, world, train_steps):
    hf = shutil.copytree(world["hf"], tmp_path / "hf-remote")
    config = json.loads((hf / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "evil.Model"}
    (hf / "config.json").write_text(json.dumps(config))
    (hf / "evil.py").write_text("raise SystemExit('ran code from the model dir')\n")
    code, _, err = run_cli(capsys, [*base(world), "--target", str(hf), "--non-private",
                                    "--run-dir", str(tmp_path / "run")])
    assert code == 2
    assert_one_error_line(err, "declares custom code", "auto_map")
    assert not train_steps


def test_target_logits_edited_in_the_run_dir_are_refused(tmp_path, capsys, world):
    run_dir = tmp_path / "run"
    argv = [*base(world), "--target", str(world["scores"]), "--non-private", "--run-dir", str(run_dir)]
    assert run_cli(capsys, argv)[0] == 0
    np.save(run_dir / "target_logits.npy", np.zeros((N, 2), dtype=np.float32))  # a target that "never leaks"
    code, _, err = run_cli(capsys, argv)
    assert code == 2
    assert_one_error_line(err, "target_logits.npy", "changed after dpaudit wrote it")


def test_a_claim_cannot_be_stated_for_a_checkpoint_or_a_model_trained_here(tmp_path, capsys, world, train_steps):
    """The claim of a model dpaudit trained comes from its accountant; a user's claim cannot replace it."""
    code, _, err = run_cli(capsys, [*base(world)[:-2], "--epsilon", "8", "--claim-epsilon", "0.1",
                                    "--claim-delta", "1e-4", "--run-dir", str(tmp_path / "run")])
    assert code == 2
    assert_one_error_line(err, "comes from dpaudit's accountant", "target.claim_epsilon")
    assert not train_steps
