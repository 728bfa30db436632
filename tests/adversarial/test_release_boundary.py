"""The adversary of the release boundary (docs/design.md, "Release boundary"), as tests.

The adversary knows every record but one and reads every file dpaudit labels public: the run-dir files it
writes 0644 and, for ``dpaudit train`` under replace-one, the metadata of the released checkpoint. For each
public file, runs on a dataset D and on its neighbour (one record replaced for replace-one, one record
removed for add/remove) must show no field that is a deterministic function of the difference: a field equal
across two runs on D but different on the neighbour is one (every release draws fresh CSPRNG noise, split
and key, so anything that legitimately depends on the data also changes between two runs on D). The same
walk covers the audit target's secret membership row: two audits with the same row against one with a row
that differs in one example. The walk is generic, so a field added later (canaries, a full fine-tuning
reference) is checked too. The holes this closes (issue 21): an unkeyed dataset hash and the exact size in
0644 files, membership counts, histograms and canary counts in a 0644 audit.json, the clip fraction in a
0644 metrics.json and the batch loss on the progress bar.
"""

from __future__ import annotations

import html
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from dpaudit.cli.main import main
from dpaudit.reports.summary import CONFIDENTIAL
from dpaudit.rundir import keyed_dataset_hash
from dpaudit.trainers.checkpoint import read_models
from tests.cli._helpers import run_cli, save_tiny_model, write_csv

N = 60
TRAIN = ["--epochs", "1", "--batch-size", "16", "--set", "data.max_length=16", "--epsilon", "8", "--quiet"]
AUDIT = TRAIN + ["--shadows", "4", "--attacks", "loss,rmia", "--set", "audit.fprs=[0.1]", "--format", "md"]
ADD_REMOVE = ["--set", "privacy.accountant='prv'", "--set", "privacy.neighbouring='add_remove'"]
#: Un-noised statistics of the secret data: never in a public file, whatever their values happen to be.
NEVER_PUBLIC = ("clip_fraction", "mean_grad_norm", "loss", "n_members", "n_nonmembers", "num_correct",
                "histogram", "dataset_sha256", "heldout_accuracy", "auc")


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _flat(obj, prefix: str = "") -> dict[str, str]:
    """Every leaf of a JSON value as ``{"a.b[3]": json text}``."""
    if isinstance(obj, dict):
        return {k: v for key, val in obj.items() for k, v in _flat(val, f"{prefix}.{key}" if prefix else key).items()}
    if isinstance(obj, list):
        return {k: v for i, val in enumerate(obj) for k, v in _flat(val, f"{prefix}[{i}]").items()}
    return {prefix: json.dumps(obj, sort_keys=True)}


def _public(run_dir: Path, *, checkpoint_public: bool) -> dict[str, dict[str, str]]:
    """``{file: flattened fields}`` of every file the adversary may read."""
    out = {}
    for path in sorted(run_dir.iterdir()):
        if path.is_file() and _mode(path) & 0o044:
            out[path.name] = _flat(json.loads(path.read_text(encoding="utf-8")))
    if checkpoint_public and (run_dir / "models.safetensors").exists():
        out["models.safetensors:metadata"] = _flat(read_models(run_dir / "models.safetensors")[1])
    return out


def _leaks(same_a: list[dict], other: dict) -> list[str]:
    """Fields equal in every run of ``same_a`` (same input) but different (or missing) in ``other``."""
    leaks = []
    for name, fields in same_a[0].items():
        for key, value in fields.items():
            if all(run.get(name, {}).get(key) == value for run in same_a[1:]) and \
                    other.get(name, {}).get(key) != value:
                leaks.append(f"{name}: {key} = {value[:40]} vs {str(other.get(name, {}).get(key))[:40]}")
    leaks += [f"{name}: only for one input" for name in set(other) ^ set(same_a[0])]
    return leaks


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A tiny BERT, a population D, D with record 7 replaced (same size) and D without record 7."""
    root = tmp_path_factory.mktemp("boundary")
    d = write_csv(root / "d.csv", N, seed=3)
    lines = d.read_text(encoding="utf-8").splitlines()
    replaced = lines[:8] + ["someone else entirely,neg" if lines[8].endswith("pos") else "someone else,pos"]
    (root / "replaced.csv").write_text("\n".join(replaced + lines[9:]) + "\n", encoding="utf-8")
    (root / "removed.csv").write_text("\n".join(lines[:8] + lines[9:]) + "\n", encoding="utf-8")
    return {"model": save_tiny_model(root / "bert", seed=0), "root": root, "d": d,
            "replaced": root / "replaced.csv", "removed": root / "removed.csv"}


def _train(world, name: str, data: str, *extra: str) -> Path:
    run_dir = world["root"] / name
    assert main(["train", "--model", str(world["model"]), "--data", str(world[data]), "--run-dir", str(run_dir),
                 *TRAIN, *extra]) == 0
    return run_dir


@pytest.fixture(scope="module")
def trained(world) -> dict[str, Path]:
    """Two replace-one releases of D and one of D with record 7 replaced."""
    return {"d1": _train(world, "t-d1", "d"), "d2": _train(world, "t-d2", "d"),
            "replaced": _train(world, "t-rep", "replaced")}


@pytest.fixture(scope="module")
def trained_ar(world) -> dict[str, Path]:
    """Two add/remove releases of D and one of D without record 7."""
    return {"ar1": _train(world, "t-ar1", "d", *ADD_REMOVE), "ar2": _train(world, "t-ar2", "d", *ADD_REMOVE),
            "removed": _train(world, "t-rem", "removed", *ADD_REMOVE)}


def test_train_public_files_show_nothing_of_the_replaced_record(trained):
    runs = [_public(trained[k], checkpoint_public=True) for k in ("d1", "d2")]
    assert set(runs[0]) == {"summary.json", "models.safetensors:metadata"}
    assert runs[0]["summary.json"]["privacy.neighbouring"] == '"replace_one"'
    assert _leaks(runs, _public(trained["replaced"], checkpoint_public=True)) == []


def test_train_public_files_show_nothing_of_the_removed_record_under_add_remove(trained_ar):
    trained = trained_ar
    # under add/remove the size is secret: the checkpoint metadata (sizes, q, δ, ε) is not a public file
    runs = [_public(trained[k], checkpoint_public=False) for k in ("ar1", "ar2")]
    assert set(runs[0]) == {"summary.json"}
    summary = json.loads((trained["ar1"] / "summary.json").read_text())
    assert summary["privacy"]["neighbouring"] == "add_remove" and "epsilon" not in summary["privacy"]
    assert _leaks(runs, _public(trained["removed"], checkpoint_public=False)) == []


def test_private_files_are_0600_and_labelled(trained):
    run_dir = trained["d1"]
    for path in run_dir.iterdir():
        assert _mode(path) == (0o644 if path.name == "summary.json" else 0o600), path.name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["release"].startswith("private (0600)")
    assert metrics["privacy"]["neighbouring"] == "replace_one"


def test_no_public_field_names_an_unnoised_statistic(trained, trained_ar):
    for run_dir in (trained["d1"], trained_ar["ar1"]):
        for name, fields in _public(run_dir, checkpoint_public=True).items():
            named = [f for f in fields if any(word in f.split(".")[-1] for word in NEVER_PUBLIC)]
            assert named == [], (name, named)


def test_the_checkpoint_names_its_data_by_a_keyed_hash(trained):
    metas = [read_models(trained[k] / "models.safetensors")[1] for k in ("d1", "d2")]
    for k, meta in zip(("d1", "d2"), metas):
        split = json.loads((trained[k] / "split.json").read_text())
        assert "dataset_sha256" not in meta
        assert meta["dataset_hmac_sha256"] == keyed_dataset_hash(split["salt"], split["dataset_sha256"])
    assert metas[0]["dataset_hmac_sha256"] != metas[1]["dataset_hmac_sha256"]  # a fresh key per run


def test_the_progress_bar_shows_no_batch_loss(world, capsys):
    argv = ["train", "--model", str(world["model"]), "--data", str(world["d"]), "--run-dir",
            str(world["root"] / "t-bar"), *[a for a in TRAIN if a != "--quiet"]]
    code, out, err = run_cli(capsys, argv)
    assert code == 0, err
    assert "eps=" in err  # the bar was drawn
    assert "loss" not in err and "loss" not in out and "clip" not in err


def _audit(world, monkeypatch, name: str, data: str, row: np.ndarray | None) -> tuple[Path, str]:
    """An audit of ``data`` whose target trains on the members in ``row`` (None: the CSPRNG draw)."""
    from dpaudit.pipeline import population

    draw = population._draw

    def fixed(cfg, n, m_models, target_mask):
        membership = draw(cfg, n, m_models, target_mask)
        if row is not None:
            membership[0] = row
        return membership

    monkeypatch.setattr(population, "_draw", fixed)
    run_dir = world["root"] / name
    code = main(["audit", "--model", str(world["model"]), "--data", str(world[data]), "--run-dir", str(run_dir),
                 *AUDIT])
    assert code == 0
    return run_dir, ""


def test_audit_public_files_show_nothing_of_the_membership_or_the_record(world, monkeypatch, capsys):
    row = np.random.default_rng(5).random(N) < 0.5
    flipped = row.copy()
    flipped[7] = not flipped[7]  # the target trained with or without example 7
    d1, _ = _audit(world, monkeypatch, "a-d1", "d", row)
    d2, _ = _audit(world, monkeypatch, "a-d2", "d", row)
    out = capsys.readouterr().out
    runs = [_public(d, checkpoint_public=False) for d in (d1, d2)]
    assert set(runs[0]) == {"summary.json"}
    assert _leaks(runs, _public(_audit(world, monkeypatch, "a-flip", "d", flipped)[0], checkpoint_public=False)) == []
    assert _leaks(runs, _public(_audit(world, monkeypatch, "a-rep", "replaced", row)[0],
                                checkpoint_public=False)) == []
    # audit.json and the reports are confidential: 0600, and they say so first
    for path in d1.iterdir():
        assert _mode(path) == (0o644 if path.name == "summary.json" else 0o600), path.name
    assert CONFIDENTIAL in html.unescape((d1 / "report.md").read_text(encoding="utf-8").splitlines()[2])
    assert CONFIDENTIAL in out.split("claimed:")[0]
    code, _, err = run_cli(capsys, ["report", str(d1), "--format", "md"])
    assert code == 0, err
    assert _mode(d1 / "report.md") == 0o600 and _mode(d1 / "audit.json") == 0o600


def test_the_walk_flags_an_unkeyed_hash_and_a_count_but_not_fresh_randomness():
    """The detector itself: a mutant that publishes sha256(D) or n_members is caught; a keyed hash is not."""
    def run(data_hash, count, key):
        return {"summary.json": _flat({"data": data_hash, "n": count, "keyed": key, "fixed": 1})}

    same = [run("aa", 30, "k1"), run("aa", 30, "k2")]
    assert sorted(_leaks(same, run("bb", 31, "k3"))) == ["summary.json: data = \"aa\" vs \"bb\"",
                                                         "summary.json: n = 30 vs 31"]
    assert _leaks(same, run("aa", 30, "k4")) == []
