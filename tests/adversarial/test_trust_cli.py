"""The stated (ε, δ) holds for the model it names: run directories, external targets, seeded noise and the
files dpaudit leaves on disk, tried from the CLI as an adversary would (issues 8 and 16).

Each test names what the code at c7a0995 did instead.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from dpaudit.attacks.evaluate import evaluate_attack
from dpaudit.attacks.signals import Signals
from dpaudit.cli.main import main
from dpaudit.report_io import load_report
from dpaudit.trainers.checkpoint import read_models
from tests.cli._helpers import assert_one_error_line, run_cli, save_tiny_model, write_csv

TRAIN_FAST = ["--epochs", "1", "--batch-size", "16", "--set", "data.max_length=16", "--quiet"]
AUDIT_FAST = TRAIN_FAST + ["--shadows", "4", "--set", "audit.fprs=[0.1]", "--format", "none"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A tiny BERT, two CSVs of the same size but different content, and a target trained on the first."""
    root = tmp_path_factory.mktemp("trust")
    model = save_tiny_model(root / "bert", seed=0)
    csv_a, csv_b = write_csv(root / "a.csv", 80, seed=0), write_csv(root / "b.csv", 80, seed=1)
    target = root / "target"
    assert main(["train", "--model", str(model), "--data", str(csv_a), "--epsilon", "8", "--run-dir", str(target),
                 *TRAIN_FAST]) == 0
    return {"model": model, "a": csv_a, "b": csv_b, "target": target}


def _train(world, run_dir: Path, *extra: str) -> list[str]:
    return ["train", "--model", str(world["model"]), "--data", str(world["a"]), "--epsilon", "8",
            "--run-dir", str(run_dir), *TRAIN_FAST, *extra]


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- finding 3: resume accepts a different training set -------------------------------------------------
@pytest.mark.parametrize("change", [["--max-examples", "60"], "content"], ids=["max-examples", "same-path-new-data"])
def test_resume_with_other_data_is_refused(tmp_path, capsys, world, train_steps, change):
    """c7a0995 compared only settings and seeds: it resumed on the new data with the old accounting."""
    data = tmp_path / "data.csv"
    data.write_bytes(world["a"].read_bytes())
    argv = ["train", "--model", str(world["model"]), "--data", str(data), "--epsilon", "8",
            "--run-dir", str(tmp_path / "run"), *TRAIN_FAST]
    assert main(argv) == 0
    checkpoint = (tmp_path / "run" / "models.safetensors").read_bytes()
    train_steps.clear()
    if change == "content":
        data.write_bytes(world["b"].read_bytes())
        code, _, err = run_cli(capsys, argv)
        fragment = "dataset_sha256 differs"
    else:
        code, _, err = run_cli(capsys, argv + change)
        fragment = "config.data.max_examples differs"
    assert code == 2
    assert_one_error_line(err, "holds a run of other inputs", fragment, "use a new --run-dir")
    assert not train_steps
    assert (tmp_path / "run" / "models.safetensors").read_bytes() == checkpoint


# --- finding 4: re-auditing in a reused run dir gates the old model ---------------------------------------
def test_reaudit_of_another_target_in_the_same_run_dir_is_refused(tmp_path, capsys, world, train_steps):
    """c7a0995 reused membership.npy and signals.npz: target B's audit exited 0 with A's AUCs."""
    base = ["audit", "--model", str(world["model"]), "--data", str(world["a"]), "--run-dir", str(tmp_path / "a"),
            *AUDIT_FAST]
    assert main(base + ["--epsilon", "8"]) == 0
    before = (tmp_path / "a" / "audit.json").read_bytes()
    train_steps.clear()
    code, _, err = run_cli(capsys, base + ["--epsilon", "50"])
    assert code == 2
    assert_one_error_line(err, "holds a run of other inputs", "config.privacy.epsilon differs")
    assert not train_steps and (tmp_path / "a" / "audit.json").read_bytes() == before
    # A planted membership file is never used: the recorded hash no longer matches.
    np.save(tmp_path / "a" / "membership.npy", np.ones((5, 80), dtype=bool))
    code, _, err = run_cli(capsys, base + ["--epsilon", "8"])
    assert code == 2
    assert_one_error_line(err, "membership.npy", "changed after dpaudit wrote it")


# --- finding 5: external targets diluted, mis-described and unchecked -----------------------------------
def _external(world, run_dir: Path, *, data: Path | None = None, members: Path | None = None) -> list[str]:
    return ["audit", "--model", str(world["model"]), "--data", str(data or world["a"]), "--epsilon", "8",
            "--target", str(world["target"] / "models.safetensors"),
            "--target-members", str(members or world["target"] / "split.json"), "--run-dir", str(run_dir),
            *AUDIT_FAST]


def test_external_target_is_judged_and_described_by_itself(tmp_path, capsys, world):
    """c7a0995 reported a leave-one-out mean over models 0–3 (three of them shadows), and the report's
    clipping and the shadows' σ/q came from the audit config rather than the target."""
    run_dir = tmp_path / "ext"
    # The audit config asks for other clipping and batch size: the target's own recipe must win.
    code, out, err = run_cli(capsys, _external(world, run_dir) + ["--set", "clipping.max_grad_norm=0.3",
                                                                  "--batch-size", "8"])
    assert code == 0, err
    report = load_report(run_dir / "audit.json")
    _, target_meta = read_models(world["target"] / "models.safetensors")
    signals = Signals.load(run_dir / "signals.npz")
    membership = np.load(run_dir / "membership.npy")
    for attack in report.attacks:
        own = evaluate_attack(attack.name, signals, membership, targets=(0,), delta=report.privacy.delta,
                              significance=attack.epsilon_lb["significance"], fprs=(0.1,))
        assert attack.auc == pytest.approx(own.auc) and attack.auc_std is None
    assert report.privacy.clipping.max_grad_norm == target_meta["settings"]["clipping"]["max_grad_norm"] != 0.3
    assert (report.privacy.noise_multiplier, report.privacy.sample_rate, report.privacy.steps) == (
        target_meta["noise_multiplier"], target_meta["sample_rate"], target_meta["steps"])
    assert report.privacy.claim_source == "checkpoint" and report.privacy.noise == "secure"
    _, shadow_meta = read_models(run_dir / "models.safetensors")  # the shadows trained with the target's q and σ
    assert shadow_meta["sample_rate"] == target_meta["sample_rate"]
    assert shadow_meta["noise_multiplier"] == target_meta["noise_multiplier"]
    assert shadow_meta["steps"] == target_meta["steps"]
    # Bounds from the one-run theorem need a fair coin per example; a target's own split is not one.
    assert all(a.epsilon_lb["kind"] == "estimate" for a in report.attacks)


def test_external_target_from_other_data_is_refused(tmp_path, capsys, world, train_steps):
    """c7a0995 checked only id ranges: other data (or another --seed/--max-examples) scrambled the ids and the
    gate passed."""
    code, _, err = run_cli(capsys, _external(world, tmp_path / "x", data=world["b"]))
    assert code == 2
    assert_one_error_line(err, "was trained on dataset", "use the target's data")
    assert not train_steps


def test_external_target_with_other_ids_is_refused(tmp_path, capsys, world, train_steps):
    split = json.loads((world["target"] / "split.json").read_text())
    plain = tmp_path / "ids.json"
    plain.write_text(json.dumps(split["train"]))
    code, _, err = run_cli(capsys, _external(world, tmp_path / "x", members=plain))
    assert code == 2
    assert_one_error_line(err, "commits to its training ids", "split.json")
    forged = tmp_path / "split.json"
    forged.write_text(json.dumps({**split, "train": split["train"][1:] + split["holdout"][:1]}))
    code, _, err = run_cli(capsys, _external(world, tmp_path / "y", members=forged))
    assert code == 2
    assert_one_error_line(err, "do not match the ids")
    assert not train_steps


def test_checkpoint_commits_to_ids_without_revealing_them(world):
    """An unkeyed hash of the ids would let an adversary test 'ids with x' against 'ids without x'."""
    import hashlib

    split = json.loads((world["target"] / "split.json").read_text())
    _, meta = read_models(world["target"] / "models.safetensors")
    ids = sorted(split["train"])
    for candidate in (ids, ids[1:]):
        text = ",".join(map(str, candidate))
        for guess in (hashlib.sha256(text.encode()).hexdigest(), hashlib.sha256((":" + text).encode()).hexdigest()):
            assert guess != meta["members_commitment"]
    metrics = json.loads((world["target"] / "metrics.json").read_text())
    for public in (meta, metrics):  # no public field holds the id list itself
        assert not any(isinstance(v, list) and sorted(v) == ids for v in public.values())


# --- seeded noise is recorded, shown and refused by the gate ---------------------------------------------
def test_seeded_noise_is_recorded_and_gated(tmp_path, capsys, world):
    policy = tmp_path / "policy.toml"
    policy.write_text("max_epsilon = 10.0\n")
    for flags, noise, gate_code in (([], "secure", 0), (["--seeded-noise"], "seeded", 1)):
        run_dir = tmp_path / noise
        code, out, err = run_cli(capsys, ["audit", "--model", str(world["model"]), "--data", str(world["a"]),
                                          "--epsilon", "8", "--run-dir", str(run_dir), *AUDIT_FAST, *flags])
        assert code == 0, err
        assert load_report(run_dir / "audit.json").privacy.noise == noise
        _, meta = read_models(run_dir / "models.safetensors")
        assert meta["noise"][0] == noise and meta["seeds"][0] == (None if noise == "secure" else meta["seeds"][0])
        code, out, _ = run_cli(capsys, ["gate", str(run_dir / "audit.json"), "--policy", str(policy)])
        assert code == gate_code, out
        if noise == "seeded":
            assert "secure_noise" in out


def test_target_membership_is_secret(tmp_path, world):
    """c7a0995 drew the target's membership from train.seed + 1, published in audit.json: anyone could
    regenerate who trained the target. Two audits with the same seed now draw different target rows."""
    rows = []
    for name in ("one", "two"):
        assert main(["audit", "--model", str(world["model"]), "--data", str(world["a"]), "--epsilon", "8",
                     "--run-dir", str(tmp_path / name), *AUDIT_FAST]) == 0
        rows.append(np.load(tmp_path / name / "membership.npy"))
    assert not np.array_equal(rows[0][0], rows[1][0])
    assert np.array_equal(rows[0][1:], rows[1][1:])  # shadows (never released) stay reproducible


# --- issue 16: the run directory cannot be turned against its user ---------------------------------------
def test_model_dir_as_run_dir_is_refused(tmp_path, capsys, world, train_steps):
    """c7a0995 wrote config.json over a Hugging Face model's own: the model no longer loaded."""
    victim = save_tiny_model(tmp_path / "hf-model", seed=3)
    before = (victim / "config.json").read_bytes()
    capsys.readouterr()
    code, _, err = run_cli(capsys, _train(world, victim))
    assert code == 2
    assert_one_error_line(err, "not empty and was not created by dpaudit", "--run-dir")
    assert (victim / "config.json").read_bytes() == before and not train_steps
    report_dir = tmp_path / "someone"
    report_dir.mkdir()
    (report_dir / "audit.json").write_bytes((world["target"] / "metrics.json").read_bytes())
    code, _, err = run_cli(capsys, ["report", str(report_dir)])
    assert code == 2


def test_symlinked_outputs_are_never_written_through(tmp_path, capsys, world):
    """c7a0995 followed report.html -> ~/.ssh/authorized_keys and audit.json.tmp links."""
    run_dir = tmp_path / "run"
    assert main(["audit", "--model", str(world["model"]), "--data", str(world["a"]), "--epsilon", "8",
                 "--run-dir", str(run_dir), *AUDIT_FAST]) == 0
    victim = tmp_path / "authorized_keys"
    victim.write_text("ssh-ed25519 AAAA… owner\n")
    (run_dir / "report.html").symlink_to(victim)
    (run_dir / "audit.json.tmp").symlink_to(victim)
    code, _, err = run_cli(capsys, ["report", str(run_dir), "--format", "html"])
    assert code == 2
    assert_one_error_line(err, "report.html", "symbolic link")
    assert victim.read_text() == "ssh-ed25519 AAAA… owner\n"
    (run_dir / "report.html").unlink()
    code, _, err = run_cli(capsys, ["report", str(run_dir), "--format", "html,md"])
    assert code == 0, err
    assert victim.read_text() == "ssh-ed25519 AAAA… owner\n" and (run_dir / "audit.json.tmp").is_symlink()


def test_sensitive_files_are_private(tmp_path, world):
    """c7a0995 wrote membership.npy, signals.npz, split.json and checkpoints 0644 (world-readable)."""
    run_dir = tmp_path / "run"
    assert main(["audit", "--model", str(world["model"]), "--data", str(world["a"]), "--epsilon", "8",
                 "--run-dir", str(run_dir), *AUDIT_FAST[:-2]]) == 0
    for name in ("membership.npy", "signals.npz", "models.safetensors", "config.json"):
        assert _mode(run_dir / name) == 0o600, name
    # confidential: they describe the target's membership (docs/design.md, "Release boundary")
    for name in ("audit.json", "report.html", "report.md", "dpaudit-run.json"):
        assert _mode(run_dir / name) == 0o600, name
    assert _mode(run_dir / "summary.json") == 0o644
    for name in ("split.json", "models.safetensors", "config.json", "metrics.json"):
        assert _mode(world["target"] / name) == 0o600, name
    assert _mode(world["target"] / "summary.json") == 0o644
    # Reports name files, not places on this machine.
    text = (run_dir / "audit.json").read_text()
    assert str(tmp_path) not in text and str(world["model"]) not in text


def test_orphan_temporaries_of_a_killed_run_are_removed(tmp_path):
    """A SIGKILL before a rename leaves `.<name>.<hex>.tmp`: an uncommitted checkpoint (steps never accounted,
    a second release if the dir is shared) — and, in a fresh dir, a file that made it look foreign."""
    from dpaudit.rundir import RunDir

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / ".dpaudit-run.json.0123456789abcdef.tmp").write_text("{")
    RunDir.claim(fresh, command="train")  # not refused as "not created by dpaudit"
    assert sorted(p.name for p in fresh.iterdir()) == ["dpaudit-run.json"]
    orphan = fresh / ".models.safetensors.fedcba9876543210.tmp"
    orphan.write_bytes(b"uncommitted")
    keep = fresh / "notes.tmp"
    keep.write_text("not ours")
    RunDir.claim(fresh, command="train")
    assert not orphan.exists() and keep.exists()


def test_unknown_noise_kind_is_refused_at_load(tmp_path, capsys, world, train_steps):
    code, _, err = run_cli(capsys, _train(world, tmp_path / "run", "--set", "train.noise=weak"))
    assert code == 2
    assert_one_error_line(err, "train.noise must be one of {secure, seeded}")
    assert not train_steps and not (tmp_path / "run").exists()
