"""Targets from anywhere, end to end, attacked: hostile claims, scores for another population order, a
user trying to silence the "reference models differ" warning, and ``full`` shadows that must not be
reused or trained otherwise than stated."""

from __future__ import annotations

import numpy as np
import pytest

from dpaudit.report_io import load_report
from tests.cli._helpers import assert_one_error_line, run_cli
from tests.cli._targets import N, base, make_world, write_table


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_world(tmp_path_factory.mktemp("any-target-e2e"))


def _perfect(world) -> np.ndarray:
    """Scores of a model right on every example (labels alternate in the test CSV)."""
    return np.eye(2, dtype=np.float32)[world["ds"].labels] * 5.0


def test_claim_the_accountant_cannot_evaluate_is_one_line(tmp_path, capsys, world, train_steps):
    """σ = 1e-6, q = 1, 10⁹ steps: opacus' PRV discretisation raised a bare ValueError (traceback)."""
    code, _, err = run_cli(capsys, [*base(world), "--target", str(world["scores"]), "--claim-noise-multiplier", "1e-6",
                                    "--claim-sample-rate", "1", "--claim-steps", "1000000000", "--claim-delta", "1e-3",
                                    "--run-dir", str(tmp_path / "run")])
    assert code == 2
    assert_one_error_line(err, "cannot be accounted", "claim_epsilon + claim_delta")
    assert not train_steps


def test_rate_claim_with_a_tiny_epsilon_trains_shadows_at_the_stated_sigma(tmp_path, capsys, world):
    """σ = 10⁶ at q = 1e-9 gives ε ≈ 0.009: the shadows were calibrated to that ε at the config's q and
    steps — unreachable, so a valid claim was refused."""
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, [*base(world), "--target", str(world["scores"]), "--claim-noise-multiplier",
                                    "1000000", "--claim-sample-rate", "1e-9", "--claim-steps", "1", "--claim-delta",
                                    "1e-3", "--run-dir", str(run_dir)])
    assert code == 0, err
    p = load_report(run_dir / "audit.json").privacy
    assert (p.noise_multiplier, p.sample_rate, p.steps) == (1e6, 1e-9, 1) and p.epsilon < 0.05


def test_scores_with_texts_of_another_population_order_are_refused(tmp_path, capsys, world, train_steps):
    """The file says which text each id is: shifted by one row, every id names its neighbour's text."""
    texts = np.roll(np.asarray(world["ds"].texts, dtype=object), 1)
    path = write_table(tmp_path / "shifted.csv", np.arange(N), np.roll(world["logits"], 1, axis=0))
    import pandas as pd

    frame = pd.read_csv(path)
    frame["text"] = texts
    frame.to_csv(path, index=False)
    code, _, err = run_cli(capsys, [*base(world), "--target", str(path), "--run-dir", str(tmp_path / "run")])
    assert code == 2
    assert_one_error_line(err, "another population or order", "data.max_examples")
    assert not train_steps
    # the same file in the population's order is accepted with its text column
    frame["text"] = list(world["ds"].texts)
    frame[["c0", "c1"]] = world["logits"]
    frame.to_csv(path, index=False)
    code, _, err = run_cli(capsys, [*base(world), "--target", str(path), "--run-dir", str(tmp_path / "ok")])
    assert code == 0, err


def test_npy_scores_in_another_order_are_not_accepted_silently(tmp_path, capsys, world):
    """A .npy has no ids: scores of a model right on everything, shifted by one row, are wrong on every
    training example of the target. The audit says so."""
    right, shifted = tmp_path / "right.npy", tmp_path / "shifted.npy"
    np.save(right, _perfect(world))
    np.save(shifted, np.roll(_perfect(world), 1, axis=0))
    code, out, err = run_cli(capsys, [*base(world), "--target", str(shifted), "--run-dir", str(tmp_path / "a")])
    assert code == 0, err
    assert "population's order" in out and "shifted.npy" in out
    code, out, err = run_cli(capsys, [*base(world), "--target", str(right), "--run-dir", str(tmp_path / "b")])
    assert code == 0, err
    assert "population's order" not in out


def test_stating_the_recipe_with_an_epsilon_only_claim_keeps_the_warning(tmp_path, capsys, world):
    """target.recipe = bitfit with bitfit shadows, but only (ε, δ) stated: σ, q and steps are guesses, so the
    shadows are not known to train like the target."""
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, [*base(world), "--target", str(world["hf"]), "--target-recipe", "bitfit",
                                    "--claim-epsilon", "4", "--claim-delta", "1e-3", "--run-dir", str(run_dir)])
    assert code == 0, err
    target = load_report(run_dir / "audit.json").run.target
    assert target["recipe_differs"] and "attack power may be understated" in target["warning"]
    assert "Reference models differ from the target" in (run_dir / "report.md").read_text()


@pytest.mark.parametrize("case,extra,fragment", [
    ("full shadows for a target trained here", ["--shadow-recipe", "full", "--non-private"], "trained here"),
    ("a schedule the full recipe does not run", ["--target", "HF", "--shadow-recipe", "full", "--set",
                                                 "optim.schedule=linear"], "not supported"),
    ("a dpaudit recipe other than bitfit", ["--target-recipe", "full", "--non-private"], "remove target.recipe"),
])
def test_full_recipe_misuse_is_one_line_before_any_training(case, extra, fragment, tmp_path, capsys, world,
                                                            train_steps):
    argv = [a for a in base(world) if a not in ("--target-members", str(world["members"]))]
    if "--target" in extra:
        argv += ["--target-members", str(world["members"])]
    extra = [str(world["hf"]) if a == "HF" else a for a in extra]
    code, _, err = run_cli(capsys, [*argv, *extra, "--run-dir", str(tmp_path / "run")])
    assert code == 2, case
    assert_one_error_line(err, fragment)
    assert not train_steps


def test_rerun_shadows_retrains_full_shadows(tmp_path, capsys, monkeypatch, world):
    """``--rerun shadows`` must recompute the shadows: the per-model files were reused as they were."""
    import dpaudit.trainers.full as full

    trained: list[int] = []
    original = full.train_full
    monkeypatch.setattr(full, "train_full", lambda *a, **k: trained.append(1) or original(*a, **k))
    argv = [*base(world), "--target", str(world["scores"]), "--shadow-recipe", "full", "--set", "optim.lr=1e-3",
            "--run-dir", str(tmp_path / "run")]
    assert run_cli(capsys, argv)[0] == 0 and len(trained) == 4
    assert run_cli(capsys, argv)[0] == 0 and len(trained) == 4  # resumed: nothing retrained
    assert run_cli(capsys, [*argv, "--rerun", "shadows"])[0] == 0
    assert len(trained) == 8
