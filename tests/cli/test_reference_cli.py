"""``dpaudit audit --reference non-private``: the non-private bank beside the target, end to end.

One audit writes both banks, ``audit.json`` carries the ``reference`` section, the reports and the printed
summary show both models; the same command resumes both banks; the reference bank is proven non-private
from its own checkpoint (σ = 0, no accountant history) and leaks more than a DP target on the same data.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dpaudit.report_io import load_report
from dpaudit.trainers.checkpoint import read_models
from tests.cli._helpers import run_cli, save_tiny_model, write_csv


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference-assets")
    return save_tiny_model(root / "bert"), write_csv(root / "reviews.csv", 60)


def _argv(assets, run_dir, *extra) -> list[str]:
    model, csv = assets
    return ["audit", "--model", str(model), "--data", str(csv), "--shadows", "4", "--epochs", "1",
            "--batch-size", "16", "--set", "data.max_length=16", "--set", "audit.fprs=[0.1]",
            "--run-dir", str(run_dir), "--quiet", *extra]


def _held_out_accuracy(run_dir, signals_file) -> float:
    membership = np.load(run_dir / "membership.npy")
    with np.load(signals_file) as sig:
        logits, labels = sig["logits"], sig["labels"]
    out = ~membership[0]
    return float((logits[0].argmax(1) == labels)[out].mean())


def test_reference_audit_end_to_end_then_resume(tmp_path, capsys, assets, train_steps):
    run_dir = tmp_path / "run"
    argv = _argv(assets, run_dir, "--epsilon", "8", "--reference", "non-private")
    code, out, err = run_cli(capsys, argv)
    assert code == 0, err
    report = load_report(run_dir / "audit.json")  # schema-validated
    ref = report.reference
    assert ref is not None and ref.kind == "non_private" and ref.non_private and ref.noise_multiplier == 0.0
    assert [a.name for a in ref.attacks] == [a.name for a in report.attacks]
    assert all(a.status == "ok" for a in ref.attacks) and ref.canary is not None
    assert report.utility.non_private_reference == ref.utility.value
    assert ref.utility.value == pytest.approx(_held_out_accuracy(run_dir, run_dir / "reference" / "signals.npz"))
    assert report.utility.value == pytest.approx(_held_out_accuracy(run_dir, run_dir / "signals.npz"))
    assert np.array_equal(np.load(run_dir / "reference" / "membership.npy"), np.load(run_dir / "membership.npy"))

    # The reference checkpoint says, in its own metadata, that it trained without noise; the target's did not.
    _, meta = read_models(run_dir / "reference" / "models.safetensors")
    assert meta["non_private"] is True and meta["noise_multiplier"] == 0.0 and meta["accountant_history"] == []
    assert meta["settings"]["noise_multiplier"] == 0.0 and meta["reference"] == "non_private"
    assert meta["num_models"] == 5
    _, target_meta = read_models(run_dir / "models.safetensors")
    assert target_meta["non_private"] is False and target_meta["noise_multiplier"] > 0.0

    # Both models in the printed summary and in every report.
    assert "non-private reference (ε = ∞)" in out and "target (ε = " in out
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="comparison"' in html and "Without DP the same training" in html
    assert "### Without DP vs with DP" in (run_dir / "report.md").read_text(encoding="utf-8")
    first = json.loads((run_dir / "audit.json").read_text())

    # The same command resumes both banks: no training step, the same numbers.
    train_steps.clear()
    code, _, err = run_cli(capsys, argv)
    assert code == 0, err
    assert train_steps == []
    again = json.loads((run_dir / "audit.json").read_text())
    assert again["reference"]["attacks"] == first["reference"]["attacks"]
    assert again["utility"] == first["utility"]

    # --rerun shadows retrains both banks (the reference's files belong to the same stages).
    train_steps.clear()
    code, _, err = run_cli(capsys, [*argv, "--rerun", "shadows"])
    assert code == 0, err
    assert len(train_steps) == report.privacy.steps + ref.steps > 0
