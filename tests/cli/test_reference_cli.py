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


def _memorising_assets(root):
    """A one-layer BERT with 256-dim features (random weights, the embedded tokenizer) and 64 rows of 8 words
    from 3,000 vocabulary words with labels by a fair coin: nothing to learn, everything to memorise — a
    model trained without DP remembers its training rows."""
    import shutil

    import torch
    from transformers import BertConfig, BertModel

    from dpaudit.models import embedded_model_dir
    from tests.cli._helpers import TOKENIZER_FILES

    torch.manual_seed(0)
    model = root / "bert-256"
    BertModel(BertConfig(hidden_size=256, num_hidden_layers=1, num_attention_heads=2, intermediate_size=256,
                         vocab_size=30522, max_position_embeddings=64)).save_pretrained(model)
    for name in TOKENIZER_FILES:
        shutil.copy(embedded_model_dir() / name, model / name)
    vocab = [w for w in (embedded_model_dir() / "vocab.txt").read_text(encoding="utf-8").split("\n")
             if w.isalpha() and len(w) > 3][:3000]
    rng = np.random.default_rng(0)
    rows = [" ".join(rng.choice(vocab, 8)) + ("," + ("pos" if rng.random() < 0.5 else "neg")) for _ in range(64)]
    csv = root / "distinct.csv"
    csv.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return model, csv


def test_reference_leaks_more_than_a_dp_target(tmp_path, capsys):
    """On the same population, the non-private reference's strongest attack beats the ε = 1 target's by far.

    Seeded noise makes the run reproducible (membership, sampling and noise), so this is not a coin flip
    (measured: AUC 0.86 vs 0.55); a reference trained with the DP plan (σ > 0) would sit at chance with the
    target.
    """
    model, csv = _memorising_assets(tmp_path)
    argv = ["audit", "--model", str(model), "--data", str(csv), "--shadows", "4", "--epochs", "30",
            "--batch-size", "8", "--set", "optim.lr=0.05", "--set", "data.max_length=16",
            "--set", "audit.fprs=[0.1]", "--epsilon", "1", "--seeded-noise", "--reference", "non-private",
            "--run-dir", str(tmp_path / "run"), "--quiet", "--format", "none"]
    code, _, err = run_cli(capsys, argv)
    assert code == 0, err
    report = load_report(tmp_path / "run" / "audit.json")
    ref, target = report.reference.strongest(), report.strongest_attack()
    assert ref.auc > 0.75 and ref.auc > target.auc + 0.15, (ref.name, ref.auc, target.name, target.auc)
