"""A newcomer's first audit on a small CSV: defaults that fit the data, and bad input refused fast.

The 600-row audit with default settings runs (FPRs the population resolves, only the attacks 2 shadows can
run, the classes named, a warning that training takes few steps); every bad input is one ``error:`` line,
exit 2, before torch is imported (checked in a fresh interpreter: this test process has torch already), and
leaves no run directory behind; every flag of every subcommand has help.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dpaudit.attacks.membership import population_fprs, required_population
from dpaudit.cli.main import build_parser
from dpaudit.config import PRESETS
from dpaudit.errors import DataError
from dpaudit.rundir import MARKER, RunDir, removed_if_unfinished
from dpaudit.trainers.loop import TrainSettings, sample_rate_and_steps
from dpaudit.trainers.recipe import FEW_STEPS, PrivacyPlan, few_steps_warning
from tests.cli._helpers import WORDS, run_cli, save_tiny_model

ROOT = Path(__file__).resolve().parents[2]


def _review_csv(path: Path, n: int, labels=("neg", "neutral", "pos"), seed: int = 0) -> Path:
    """``review,sentiment`` rows: not the default column names."""
    rng = np.random.default_rng(seed)
    rows = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 9)))) + f",{labels[i % len(labels)]}"
            for i in range(n)]
    path.write_text("review,sentiment\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("small")
    return {"model": save_tiny_model(tmp / "tiny-bert"), "csv": _review_csv(tmp / "reviews.csv", 600)}


def _columns(assets) -> list[str]:
    return ["--model", str(assets["model"]), "--data", str(assets["csv"]), "--text-column", "review",
            "--label-column", "sentiment", "--max-length", "32"]


def test_600_row_csv_audit_with_defaults_runs_and_says_what_it_chose(capsys, tmp_path, assets):
    run_dir = tmp_path / "audit"
    code, out, err = run_cli(capsys, ["audit", *_columns(assets), "--epsilon", "8", "--shadows", "2",
                                      "--epochs", "1", "--seeded-noise", "--run-dir", str(run_dir), "--quiet",
                                      "--format", "none"])
    assert code == 0, err
    assert "3 classes: neg, neutral, pos (label column 'sentiment')" in out
    assert "FPR 0.001 needs ≥ 1,000 non-members" in out and "reporting TPR at FPR 0.01 and 0.1" in out
    assert "2 shadows: running only loss" in out
    assert "warning: training takes only 1 optimizer step" in out and "--epochs 9 for ≥ 10 steps" in out
    report = json.loads((run_dir / "audit.json").read_text())
    assert [a["name"] for a in report["attacks"]] == ["loss"]
    assert [t["fpr"] for t in report["attacks"][0]["tpr_at_fpr"]] == [0.01, 0.1]
    assert report["run"]["config"]["audit"]["fprs"] == [0.01, 0.1]


def test_train_names_the_classes_and_warns_of_few_steps(capsys, tmp_path, assets):
    code, out, err = run_cli(capsys, ["train", *_columns(assets), "--epsilon", "8", "--epochs", "1",
                                      "--seeded-noise", "--run-dir", str(tmp_path / "t"), "--quiet"])
    assert code == 0, err
    assert "3 classes: neg, neutral, pos (label column 'sentiment')" in out
    assert "warning: training takes only" in out


#: Runs every case in one fresh interpreter: rc, stderr and whether torch or transformers got imported.
_PROBE = """
import contextlib, io, json, sys
from dpaudit.cli.main import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    out.append({"rc": rc, "err": err.getvalue(), "heavy": sorted({"torch", "transformers"} & set(sys.modules))})
print(json.dumps(out))
"""


def _bad_inputs(tmp: Path, assets) -> dict[str, tuple[list[str], str]]:
    """name -> (argv, fragment of the one error line); ``new`` is the --run-dir each may not leave behind."""
    (tmp / "scores.npy").write_bytes(b"")
    _review_csv(tmp / "no-label.csv", 50)
    new = ["--run-dir", str(tmp / "new"), "--quiet"]
    cols, eps = _columns(assets), ["--epsilon", "8"]
    return {
        "audit: missing data file": (["audit", "--data", str(tmp / "nope.csv"), *eps, *new], "nope.csv' does not exist"),
        "train: missing data file": (["train", "--data", str(tmp / "nope.csv"), *eps, *new], "nope.csv' does not exist"),
        "verify: missing data file": (["verify", "--data", str(tmp / "nope.csv"), *eps, *new],
                                      "nope.csv' does not exist"),
        "data not a regular file": (["train", "--data", os.devnull, *eps, *new], "not a regular file or directory"),
        "missing model dir": (["audit", "--model", str(tmp / "no-model"), *eps, *new], "no-model' does not exist"),
        "named attack needs 4 shadows": (["audit", *cols, *eps, "--shadows", "2", "--attacks", "loss,lira_online",
                                          *new], "audit.num_shadows ≥ 4 (got 2)"),
        "odd number of shadows": (["audit", *cols, *eps, "--shadows", "3", *new], "num_shadows=3"),
        "missing target": (["audit", *cols, *eps, "--target", str(tmp / "nope.npy"), "--target-members",
                            str(tmp / "ids.json"), *new], "nope.npy' does not exist"),
        "missing member ids": (["audit", *cols, *eps, "--target", str(tmp / "scores.npy"), "--target-members",
                                str(tmp / "ids.json"), *new], "ids.json' does not exist"),
        "foreign run dir": (["audit", *cols, *eps, "--run-dir", str(tmp / "mine"), "--quiet"], "was not created by "
                            "dpaudit"),
        "explicit FPR the population cannot resolve": (["audit", *cols, *eps, "--set", "audit.fprs=[0.001,0.1]", *new],
                                                       "--set audit.fprs=[0.1]"),
        "label column not in the file": (["train", *cols[:2], "--data", str(tmp / "no-label.csv"), "--text-column", "review",
                                          "--label-column", "stars", *eps, *new], "stars"),
    }


def test_bad_input_is_one_line_exit_2_before_torch_and_leaves_no_run_dir(tmp_path, assets):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("my own file")
    cases = _bad_inputs(tmp_path, assets)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps([argv for argv, _ in cases.values()])],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for (name, (_, fragment)), result in zip(cases.items(), json.loads(proc.stdout.splitlines()[-1])):
        lines = result["err"].strip().splitlines()
        assert result["rc"] == 2 and len(lines) == 1 and lines[0].startswith("error: "), (name, result)
        assert fragment in lines[0], (name, lines[0])
        assert result["heavy"] == [], (name, result["heavy"])
        assert not (tmp_path / "new").exists(), name
    assert (tmp_path / "mine" / "notes.txt").read_text() == "my own file"


def test_a_failed_run_keeps_a_directory_that_existed_and_finished_work(tmp_path):
    existed = RunDir.claim(tmp_path / "old", command="audit")
    with pytest.raises(DataError), removed_if_unfinished(existed.path):
        raise DataError("boom")
    assert (existed.path / MARKER).is_file()
    with pytest.raises(DataError), removed_if_unfinished(tmp_path / "trained"):
        run = RunDir.claim(tmp_path / "trained", command="audit")
        run.write("membership.npy", b"m")
        run.write("models.safetensors", b"weights")  # finished work
        raise DataError("boom")
    assert (tmp_path / "trained" / "models.safetensors").read_bytes() == b"weights"
    with pytest.raises(DataError), removed_if_unfinished(tmp_path / "foreign"):
        RunDir.claim(tmp_path / "foreign", command="audit")
        (tmp_path / "foreign" / "unrecorded.txt").write_text("not ours to delete")
        raise DataError("boom")
    assert (tmp_path / "foreign" / "unrecorded.txt").is_file()
    with pytest.raises(DataError), removed_if_unfinished(tmp_path / "fresh"):
        RunDir.claim(tmp_path / "fresh", command="audit").write("membership.npy", b"m")
        raise DataError("boom")
    assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("n", [20, 199, 200, 600, 1999, 2000, 10_000])
def test_unset_fprs_are_the_standard_ones_the_population_resolves(n):
    fprs, note = population_fprs(n, None)
    assert fprs == tuple(f for f in (0.001, 0.01, 0.1) if required_population(f) <= n)
    assert (note is None) == (len(fprs) == 3)


def test_explicit_fprs_are_never_dropped_and_the_error_gives_the_fix():
    assert population_fprs(600, (0.01,)) == ((0.01,), None)
    with pytest.raises(DataError, match=r"got N=600; use a larger dataset or --set audit\.fprs=\[0\.01,0\.1\]"):
        population_fprs(600, (0.001, 0.01, 0.1))
    with pytest.raises(DataError, match="a dataset of ≥ 20 examples"):
        population_fprs(10, None)


@pytest.mark.parametrize("n, batch, epochs", [(296, 256, 1.0), (296, 256, 3.0), (50, 40, 0.5), (1000, 999, 2.0)])
def test_few_steps_warning_suggests_settings_that_give_enough_steps(n, batch, epochs):
    settings = TrainSettings(epochs=epochs, batch_size=batch)
    q, steps = sample_rate_and_steps(settings, [n])
    plan = PrivacyPlan(False, 1.0, q, steps, 1e-5, None, None, "prv")
    text = few_steps_warning(plan, settings)
    assert text is not None and f"only {steps} optimizer step" in text
    suggested_batch = int(text.split("--batch-size ")[1].split()[0])
    suggested_epochs = float(text.split("--epochs ")[1].split()[0])
    for fixed in (TrainSettings(epochs=epochs, batch_size=suggested_batch),
                  TrainSettings(epochs=suggested_epochs, batch_size=batch)):
        assert sample_rate_and_steps(fixed, [n])[1] >= FEW_STEPS
    enough = PrivacyPlan(False, 1.0, q, FEW_STEPS, 1e-5, None, None, "prv")
    assert few_steps_warning(enough, settings) is None


def _actions(parser: argparse.ArgumentParser, name: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                yield from _actions(subparser, f"{name} {sub}")
        elif not isinstance(action, argparse._HelpAction):
            yield name, action


def test_every_flag_of_every_subcommand_has_help():
    missing = [f"{name} {'/'.join(a.option_strings) or a.dest}" for name, a in _actions(build_parser(), "dpaudit")
               if not (a.help or "").strip()]
    assert not missing


def test_preset_help_states_what_the_presets_set():
    helps = {name: a.help for name, a in _actions(build_parser(), "dpaudit") if "--preset" in a.option_strings}
    assert set(helps) == {"dpaudit train", "dpaudit audit", "dpaudit verify"}
    for text in helps.values():
        for name, preset in PRESETS.items():
            assert f"{name} (ε={preset['privacy']['epsilon']:g}, batch {preset['train']['batch_size']}" in text
