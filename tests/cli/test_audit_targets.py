"""``dpaudit audit`` of targets trained elsewhere: a Hugging Face classifier dir and black-box scores files,
with the user's claim or none; stage reuse and ``--rerun``; bad input → one line, exit 2, work kept."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dpaudit.report_io import load_report
from tests.cli._helpers import assert_one_error_line, run_cli
from tests.cli._targets import N, base, make_world, write_table


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    return make_world(tmp_path_factory.mktemp("targets"))


@pytest.fixture
def attack_runs(monkeypatch) -> list[int]:
    """One entry per computation of the attacks stage."""
    import dpaudit.pipeline.attack as attack

    calls: list[int] = []
    original = attack.run_attacks

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(attack, "run_attacks", spy)
    return calls


def _files(run_dir) -> dict:
    return json.loads((run_dir / "dpaudit-run.json").read_text())["files"]


def test_hf_classifier_with_user_rate_claim(tmp_path, capsys, world, train_steps):
    run_dir = tmp_path / "hf"
    code, out, err = run_cli(capsys, [*base(world), "--target", str(world["hf"]), "--claim-noise-multiplier", "1.0",
                                      "--claim-sample-rate", "0.1", "--claim-steps", "30", "--claim-delta", "1e-3",
                                      "--run-dir", str(run_dir)])
    assert code == 0, err
    assert train_steps and set(train_steps) == {4}  # only the shadows
    report = load_report(run_dir / "audit.json")
    p = report.privacy
    assert p.claim_source == "user" and not p.non_private and p.epsilon > 0 and p.profile is not None
    # The shadows train with the user's σ, q, steps
    assert (p.noise_multiplier, p.sample_rate, p.steps) == (1.0, 0.1, 30)
    target = report.run.target
    assert target["kind"] == "hf" and target["recipe_differs"] and "computed by dpaudit" in target["obtained"]
    assert len(target["sha256"]) == 64
    md = (run_dir / "report.md").read_text()
    assert "Reference models differ from the target" in md and "stated by the user" in md
    signals = np.load(run_dir / "signals.npz")
    np.testing.assert_allclose(signals["logits"][0], world["logits"], atol=1e-4)  # row 0 = the target's own


def test_scores_file_without_claim_is_gated_as_not_private(tmp_path, capsys, world):
    run_dir = tmp_path / "npy"  # no [privacy] either: without a claim the shadows train non-private
    code, _, err = run_cli(capsys, [*base(world), "--target", str(world["scores"]), "--run-dir", str(run_dir)])
    assert code == 0, err
    report = load_report(run_dir / "audit.json")
    assert report.privacy.claim_source == "none" and report.privacy.non_private
    assert report.run.target["obtained"] == "supplied by the user as logits"
    assert "No DP claim" in (run_dir / "report.md").read_text()
    policy = tmp_path / "policy.toml"
    policy.write_text("max_epsilon = 8.0\n")
    code, out, _ = run_cli(capsys, ["gate", str(run_dir / "audit.json"), "--policy", str(policy)])
    assert code == 1 and "no DP claim was stated" in out


def test_probabilities_csv_with_epsilon_claim_gated_as_stated(tmp_path, capsys, world):
    run_dir = tmp_path / "csv"
    code, _, err = run_cli(capsys, [*base(world), "--target", str(world["probs_csv"]), "--scores-kind",
                                    "probabilities", "--claim-epsilon", "4", "--claim-delta", "1e-3",
                                    "--run-dir", str(run_dir)])
    assert code == 0, err
    report = load_report(run_dir / "audit.json")
    p = report.privacy
    assert (p.claim_source, p.epsilon, p.delta) == ("user", 4.0, 1e-3)
    assert p.profile.epsilons == (4.0,)  # the (ε, δ) point bounds the ROC
    assert report.run.target["obtained"] == "supplied by the user as probabilities"
    signals = np.load(run_dir / "signals.npz")
    np.testing.assert_allclose(signals["logits"][0], np.log(world["probs"]), atol=1e-5)
    policy = tmp_path / "policy.toml"
    policy.write_text("max_epsilon = 8.0\n")
    code, out, _ = run_cli(capsys, ["gate", str(run_dir / "audit.json"), "--policy", str(policy)])
    assert "ε = 4 ≤ 8 (stated by the user, not verified)" in out
    policy.write_text("max_epsilon = 2.0\n")
    code, out, _ = run_cli(capsys, ["gate", str(run_dir / "audit.json"), "--policy", str(policy)])
    assert code == 1


def test_stages_are_reused_and_rerun(tmp_path, capsys, world, train_steps, attack_runs):
    run_dir = tmp_path / "stages"
    scores = tmp_path / "scores.npy"
    np.save(scores, world["logits"])
    argv = [*base(world), "--target", str(scores), "--non-private", "--run-dir", str(run_dir)]
    assert run_cli(capsys, argv)[0] == 0
    first = _files(run_dir)
    train_steps.clear(), attack_runs.clear()
    assert run_cli(capsys, argv)[0] == 0  # everything reused
    assert not train_steps and not attack_runs
    assert run_cli(capsys, [*argv, "--set", "audit.significance=0.1"])[0] == 0  # only the attacks
    assert not train_steps and len(attack_runs) == 1
    assert _files(run_dir)["signals.npz"]["sha256"] == first["signals.npz"]["sha256"]
    attack_runs.clear()
    assert run_cli(capsys, [*argv, "--set", "audit.significance=0.1", "--rerun", "attacks"])[0] == 0
    assert not train_steps and len(attack_runs) == 1
    attack_runs.clear()
    np.save(scores, world["logits"] * 2.0)  # another target's scores: target, signals and attacks again
    assert run_cli(capsys, [*argv, "--set", "audit.significance=0.1"])[0] == 0
    files = _files(run_dir)
    assert not train_steps and len(attack_runs) == 1
    assert files["model_logits.npy"]["sha256"] == first["model_logits.npy"]["sha256"]
    assert files["target_logits.npy"]["sha256"] != first["target_logits.npy"]["sha256"]
    assert files["signals.npz"]["sha256"] != first["signals.npz"]["sha256"]


def _bad(tmp, world) -> dict:
    logits = world["logits"]
    nan = logits.copy()
    nan[3, 1] = np.nan
    np.save(tmp / "nan.npy", nan)
    np.save(tmp / "three.npy", np.concatenate([logits, logits[:, :1]], axis=1))
    write_table(tmp / "outside.csv", np.r_[np.arange(N - 1), N], logits)
    write_table(tmp / "missing.parquet", np.arange(N - 1), logits[:-1])
    write_table(tmp / "dupes.csv", np.r_[np.arange(N - 1), 0], logits)
    claim = ["--target", str(world["scores"])]
    return {
        "NaN scores": (["--target", str(tmp / "nan.npy")], ("NaN or infinite",)),
        "wrong class count": (["--target", str(tmp / "three.npy")], ("3 class columns", "2 classes")),
        "ids outside": (["--target", str(tmp / "outside.csv")], ("ids outside the population", "[0, 120)")),
        "missing ids": (["--target", str(tmp / "missing.parquet")], ("no scores for 1 of the 120",)),
        "duplicate ids": (["--target", str(tmp / "dupes.csv")], ("duplicate ids",)),
        "incomplete claim": (claim + ["--claim-noise-multiplier", "1.0", "--claim-delta", "1e-3"],
                             ("incomplete claim", "claim_sample_rate")),
        "delta at least 1/N": (claim + ["--claim-epsilon", "1", "--claim-delta", "0.05"], ("1/N",)),
        "epsilon zero": (claim + ["--claim-epsilon", "0", "--claim-delta", "1e-3"], ("target.claim_epsilon must be",)),
        "mixed claim": (claim + ["--claim-epsilon", "1", "--claim-steps", "3", "--claim-delta", "1e-3"],
                        ("not both",)),
        "unknown target": (["--target", str(tmp / "nope.npy")], ("does not exist",)),
        "unknown shadow recipe": (claim + ["--shadow-recipe", "magic"], ("audit.shadow_recipe must be one of",)),
        "claim for a trained target": (["--target-kind", "checkpoint", "--target", str(world["scores"]),
                                        "--claim-epsilon", "1", "--claim-delta", "1e-3"],
                                       ("checkpoint's own accounting",)),
    }


@pytest.mark.parametrize("case", ["NaN scores", "wrong class count", "ids outside", "missing ids", "duplicate ids",
                                  "incomplete claim", "delta at least 1/N", "epsilon zero", "mixed claim",
                                  "unknown target", "unknown shadow recipe", "claim for a trained target"])
def test_bad_target_input_is_one_line_and_keeps_finished_work(case, tmp_path, capsys, world, train_steps):
    argv, fragments = _bad(tmp_path, world)[case]
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, [*base(world), *argv, "--non-private", "--run-dir", str(run_dir)])
    assert code == 2, err
    assert_one_error_line(err, *fragments)
    assert not train_steps and not (run_dir / "audit.json").exists()


def test_hf_label_count_must_match(tmp_path, capsys, world, train_steps):
    from tests.cli._targets import save_classifier

    three = save_classifier(tmp_path / "hf3", world["backbone"], list(world["ds"].texts), world["ds"].labels,
                            np.ones(N, dtype=bool), num_labels=3, steps=1)
    capsys.readouterr()  # transformers' load report
    code, _, err = run_cli(capsys, [*base(world), "--target", str(three), "--non-private",
                                    "--run-dir", str(tmp_path / "run")])
    assert code == 2
    assert_one_error_line(err, "has 3 labels", "2 classes")
    assert not train_steps


def test_bad_scores_after_a_finished_audit_keep_its_files(tmp_path, capsys, world):
    run_dir = tmp_path / "keep"
    scores = tmp_path / "s.npy"
    np.save(scores, world["logits"])
    argv = [*base(world), "--target", str(scores), "--non-private", "--run-dir", str(run_dir)]
    assert run_cli(capsys, argv)[0] == 0
    before = {name: (run_dir / name).read_bytes() for name in ("audit.json", "model_logits.npy", "membership.npy")}
    bad = world["logits"].copy()
    bad[0, 0] = np.inf
    np.save(scores, bad)
    code, _, err = run_cli(capsys, argv)
    assert code == 2
    assert_one_error_line(err, "NaN or infinite")
    assert {name: (run_dir / name).read_bytes() for name in before} == before
