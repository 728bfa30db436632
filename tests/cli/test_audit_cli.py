"""``dpaudit audit`` in-process: one end-to-end audit (and its resume), auditing a model trained
elsewhere, and bad input that must fail with exit code 2 and one ``error:`` line before any training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dpaudit.cli.main import main
from dpaudit.report_io import load_report
from tests.cli._helpers import assert_one_error_line, run_cli, save_tiny_model, write_csv

FAST = ["--epochs", "1", "--batch-size", "16", "--set", "data.max_length=16", "--set", "audit.fprs=[0.1]",
        "--quiet"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    """Two tiny BERTs with different weights, a CSV, and a target trained on BERT 'a' by `dpaudit train`."""
    root = tmp_path_factory.mktemp("audit-assets")
    a, b = save_tiny_model(root / "bert-a", seed=0), save_tiny_model(root / "bert-b", seed=1)
    csv = write_csv(root / "reviews.csv", 80)
    target = root / "target"
    assert main(["train", "--model", str(a), "--data", str(csv), "--epsilon", "8", "--run-dir", str(target),
                 "--epochs", "1", "--batch-size", "16", "--set", "data.max_length=16", "--quiet"]) == 0
    # split.json holds the ids and the key of the checkpoint's training-set commitment
    return {"bert-a": a, "bert-b": b, "csv": csv, "target": target / "models.safetensors",
            "members": target / "split.json"}


def _check_audit_dir(run_dir: Path, *, n: int, shadows: int, epsilon: float | None,
                     pairs: bool = True) -> None:
    report = load_report(run_dir / "audit.json")  # validates against the schema
    assert [a.name for a in report.attacks] == ["loss", "shadow", "lira_online", "lira_offline", "rmia"]
    assert all(a.status == "ok" and 0.0 <= a.auc <= 1.0 for a in report.attacks)
    assert isinstance(report.canary, dict) and report.canary["method"] in ("one_run", "one_run_fdp")
    assert report.canary["epsilon_lb"] >= 0.0 and report.canary["num_guesses"] >= 2
    if epsilon is not None:
        assert report.privacy.non_private is False and 0.0 < report.privacy.epsilon <= epsilon + 1e-6
    assert report.run.dataset["n_population"] == n
    assert (run_dir / "report.html").is_file() and (run_dir / "report.md").is_file()
    membership = np.load(run_dir / "membership.npy")
    assert membership.shape == (shadows + 1, n) and membership.dtype == bool
    if pairs:
        for j in range(1, shadows + 1, 2):  # complementary shadow pairs
            assert (membership[j] ^ membership[j + 1]).all()
        assert (membership[1:].sum(0) == shadows // 2).all()
    else:  # an external target's share of the population: the shadows train on as many examples
        share = membership[0].mean()
        assert abs(membership[1:].mean() - share) < 0.1, (membership[1:].mean(), share)


def test_audit_embedded_end_to_end_then_resume(tmp_path, capsys, train_steps):
    run_dir = tmp_path / "audit"
    argv = ["audit", "--max-examples", "160", "--shadows", "4", "--epochs", "1", "--batch-size", "32",
            "--set", "data.max_length=24", "--set", "audit.fprs=[0.1]", "--epsilon", "8",
            "--run-dir", str(run_dir), "--quiet"]
    code, out, err = run_cli(capsys, argv)
    assert code == 0, err
    assert train_steps and set(train_steps) == {5}  # target + 4 shadows in one bank
    _check_audit_dir(run_dir, n=160, shadows=4, epsilon=8.0)
    first = json.loads((run_dir / "audit.json").read_text())
    assert "audit.json written" in out
    # The target's accuracy is stated beside the majority-class baseline of its own held-out examples.
    held_out = ~np.load(run_dir / "membership.npy")[0]
    labels = np.load(run_dir / "signals.npz")["labels"][held_out]
    assert first["utility"]["majority_baseline"] == pytest.approx(np.bincount(labels).max() / labels.size)
    assert "majority-class baseline" in out

    # The same command again resumes: no training step, the same numbers.
    train_steps.clear()
    code, _, err = run_cli(capsys, argv)
    assert code == 0, err
    assert train_steps == []
    again = json.loads((run_dir / "audit.json").read_text())
    assert [a["auc"] for a in again["attacks"]] == [a["auc"] for a in first["attacks"]]
    assert again["privacy"]["epsilon"] == first["privacy"]["epsilon"]
    assert again["canary"] == first["canary"]


@pytest.mark.parametrize("backbone", ["tiny", pytest.param("embedded", marks=pytest.mark.slow)])
def test_audit_model_trained_elsewhere(backbone, tmp_path, capsys, assets, train_steps):
    """`dpaudit train` a target, then audit its checkpoint with its training ids (same data flags)."""
    if backbone == "tiny":
        data = ["--model", str(assets["bert-a"]), "--data", str(assets["csv"])]
        target, members, n = assets["target"], assets["members"], 80
        flags = ["--epochs", "1", "--batch-size", "16", "--set", "data.max_length=16"]
    else:
        data, n = ["--max-examples", "160"], 160
        flags = ["--epochs", "1", "--batch-size", "32", "--set", "data.max_length=24"]
        assert main(["train", *data, *flags, "--epsilon", "8", "--run-dir", str(tmp_path / "t"), "--quiet"]) == 0
        target, members = tmp_path / "t" / "models.safetensors", tmp_path / "t" / "split.json"
        capsys.readouterr()
        train_steps.clear()
    run_dir = tmp_path / "audit"
    code, _, err = run_cli(capsys, ["audit", *data, *flags, "--epsilon", "8", "--shadows", "4",
                                    "--set", "audit.fprs=[0.1]", "--target", str(target),
                                    "--target-members", str(members), "--run-dir", str(run_dir), "--quiet"])
    assert code == 0, err
    assert train_steps and set(train_steps) == {4}  # only the shadows are trained
    _check_audit_dir(run_dir, n=n, shadows=4, epsilon=8.0, pairs=False)
    ids = json.loads(members.read_text())["train"]
    membership = np.load(run_dir / "membership.npy")
    assert np.flatnonzero(membership[0]).tolist() == sorted(ids)
    # The claim is the target's own accounting, not that of the shadows (which train on ~N/2 examples).
    claimed = json.loads((target.parent / "metrics.json").read_text())
    privacy = load_report(run_dir / "audit.json").privacy
    assert (privacy.steps, privacy.sample_rate, privacy.delta) == (claimed["steps"], claimed["sample_rate"],
                                                                  claimed["delta"])
    assert privacy.noise_multiplier == claimed["noise_multiplier"]
    assert privacy.epsilon == pytest.approx(claimed["epsilon"])


def _bad_audits(tmp: Path, assets: dict[str, Path]) -> dict[str, tuple[list[str], tuple[str, ...]]]:
    """name -> (argv after 'audit', fragments the error line must contain)."""
    (tmp / "bad-ids.json").write_text(json.dumps([0, 5, 80, 200]))
    tiny = ["--model", str(assets["bert-a"]), "--data", str(assets["csv"]), "--epsilon", "8"]
    external = ["--target", str(assets["target"]), "--target-members", str(assets["members"])]
    return {
        "population too small for FPR": (["--max-examples", "100", "--epsilon", "8", "--shadows", "4",
                                          "--set", "audit.fprs=[0.001]"], ("N ≥ 2000", "FPR=0.001", "got N=100")),
        "odd number of shadows": (tiny + ["--shadows", "3"], ("complementary pairs", "num_shadows=3")),
        "too few shadows for reference attacks": (tiny + ["--shadows", "2", "--attacks", "loss,shadow"],
                                                  ("num_shadows ≥ 4",)),
        "unknown attack": (tiny + ["--attacks", "loss,magic"], ("unknown attack(s) ['magic']",)),
        "member ids beyond the dataset": (tiny + ["--shadows", "4", "--target", str(assets["target"]),
                                                  "--target-members", str(tmp / "bad-ids.json")],
                                          ("do not match the dataset", "[0, 80)", "data.max_examples")),
        "missing member id file": (tiny + ["--shadows", "4", "--target", str(assets["target"]),
                                           "--target-members", str(tmp / "nope.json")], ("does not exist",)),
        "checkpoint without member ids": (tiny + ["--shadows", "4", "--target", str(assets["target"])],
                                          ("needs target.members",)),
        "target from another backbone": (["--model", str(assets["bert-b"]), "--data", str(assets["csv"]),
                                          "--epsilon", "8", "--shadows", "4", *external],
                                         ("trained on backbone", "use the backbone it was trained with")),
        "missing model dir": (["--model", str(tmp / "no-model"), "--data", str(assets["csv"]), "--epsilon", "8"],
                              ("no-model' does not exist",)),
        "significance out of range": (tiny + ["--set", "audit.significance=2.0"],
                                      ("audit.significance must be in (0, 0.5]",)),
        "canary guess fraction 0": (tiny + ["--set", "audit.canary_guess_fraction=0.0"],
                                    ("audit.canary_guess_fraction must be in (0, 1]",)),
        "no leave-one-out target": (tiny + ["--set", "audit.loo_targets=0"], ("audit.loo_targets must be in",)),
        "FPR out of range": (tiny + ["--set", "audit.fprs=[2.0]"], ("audit.fprs[0] must be in (0, 1]",)),
    }


BAD_AUDITS = ["population too small for FPR", "odd number of shadows", "too few shadows for reference attacks",
              "unknown attack", "member ids beyond the dataset", "missing member id file",
              "checkpoint without member ids", "target from another backbone", "missing model dir",
              "significance out of range", "canary guess fraction 0", "no leave-one-out target", "FPR out of range"]


@pytest.mark.parametrize("case", BAD_AUDITS)
def test_bad_audit_input_fails_before_training(case, tmp_path, capsys, assets, train_steps):
    argv, fragments = _bad_audits(tmp_path, assets)[case]
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, ["audit", *FAST, *argv, "--run-dir", str(run_dir)])
    assert code == 2
    assert_one_error_line(err, *fragments)
    assert not train_steps
    assert not run_dir.exists()  # a run that fails before any finished work removes the directory it created
