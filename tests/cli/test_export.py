"""``dpaudit export``: a tiny ``dpaudit train`` run (pooler head) written as a plain HF classifier.

The exported directory is loaded by plain transformers in a subprocess where ``import dpaudit`` fails, and its
logits equal dpaudit's own scoring of the run's checkpoint on the same texts (≤ 1e-5); its tokenizer gives the
same token ids. The card states the claim from metrics.json and holds nothing private. A mean-pooling run, an
existing output directory and an audit of another model are refused with one line (exit 2).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli._helpers import assert_one_error_line, run_cli, save_tiny_model, write_csv

TEXTS = ["good film", "the plot was slow and the actor was dull", "warm", "bright funny story with a long scene"]
TRAIN = ["--epochs", "1", "--batch-size", "16", "--set", "data.max_length=16", "--epsilon", "8", "--quiet"]

LOAD_WITHOUT_DPAUDIT = r"""
import json, sys
sys.modules["dpaudit"] = None  # any import of dpaudit now fails
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
out, texts = sys.argv[1], json.loads(sys.argv[2])
tok = AutoTokenizer.from_pretrained(out)
model = AutoModelForSequenceClassification.from_pretrained(out).eval()
enc = tok(texts, padding=True, truncation=True, max_length=16, return_tensors="pt")
with torch.no_grad():
    logits = model(**{k: v for k, v in enc.items() if k in ("input_ids", "attention_mask")}).logits
try:
    import dpaudit  # noqa: F401
    blocked = False
except ImportError:
    blocked = True
ids = [row[row_mask.bool()].tolist() for row, row_mask in zip(enc["input_ids"], enc["attention_mask"])]
print(json.dumps({"logits": logits.tolist(), "ids": ids, "blocked": blocked,
                  "labels": [model.config.id2label[i] for i in range(model.config.num_labels)]}))
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    model, csv = save_tiny_model(root / "tiny-bert"), write_csv(root / "reviews.csv", n=64)
    from dpaudit.cli.main import main

    for name, extra in (("pooler", ["--set", "model.pooling=pooler"]), ("mean", [])):
        code = main(["train", "--model", str(model), "--data", str(csv), "--run-dir", str(root / name)] + TRAIN + extra)
        assert code == 0
    return {"root": root, "model": model, "csv": csv, "pooler": root / "pooler", "mean": root / "mean"}


def _dpaudit_logits(run_dir: Path, model_dir: Path) -> tuple[np.ndarray, list[list[int]]]:
    """dpaudit's scoring path (the audit's) of the run's checkpoint on TEXTS: logits (N, C) and token ids."""
    from dpaudit.models import load_backbone
    from dpaudit.trainers.batching import EncodedTexts
    from dpaudit.trainers.checkpoint import read_models
    from dpaudit.trainers.classifier import BankedClassifier
    from dpaudit.trainers.predict import predict_logits

    tables, meta = read_models(run_dir / "models.safetensors")
    backbone, tokenizer, _ = load_backbone(model_dir)
    clf = BankedClassifier.from_backbone(backbone, num_models=1, num_labels=2, pooling=meta["pooling"])
    clf.load_trainable_state(tables)
    encoded = EncodedTexts.from_texts(TEXTS, tokenizer, max_length=16)
    return predict_logits(clf, encoded, batch_size=3)[0], [x.tolist() for x in encoded.ids]


def test_export_loads_without_dpaudit_with_dpaudit_logits(runs, capsys):
    out = runs["root"] / "exported"
    code, stdout, err = run_cli(capsys, ["export", str(runs["pooler"]), "--out", str(out)])
    assert code == 0, err
    assert "from_pretrained" in stdout
    assert not (runs["root"] / "exported.partial").exists()
    proc = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_DPAUDIT, str(out), json.dumps(TEXTS)],
                          capture_output=True, text=True, timeout=300, cwd=str(runs["root"]))
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded["blocked"] and loaded["labels"] == ["neg", "pos"]
    ours, ids = _dpaudit_logits(runs["pooler"], runs["model"])
    assert loaded["ids"] == ids
    theirs = np.asarray(loaded["logits"])
    assert np.abs(ours).max() > 1e-4  # the trained head is not zero
    np.testing.assert_allclose(theirs, ours, atol=1e-5, rtol=0)


def test_card_states_the_claim_and_nothing_private(runs, capsys):
    out = runs["root"] / "card"
    assert run_cli(capsys, ["export", str(runs["pooler"]), "--out", str(out)])[0] == 0
    metrics = json.loads((runs["pooler"] / "metrics.json").read_text())
    split = json.loads((runs["pooler"] / "split.json").read_text())
    card = (out / "README.md").read_text()
    record = json.loads((out / "dpaudit-privacy.json").read_text())
    assert record["epsilon"] == pytest.approx(metrics["epsilon"]) and record["steps"] == metrics["steps"]
    assert record["noise_multiplier"] == metrics["noise_multiplier"] and record["neighbouring"] == "replace_one"  # what dpaudit train claims
    for fragment in (f"{metrics['epsilon']:.4g}", f"| optimizer steps | {metrics['steps']} |", "| accountant | pld |",
                     "replace one example", f"| clipping norm C | {metrics['clipping']['max_grad_norm']:g} |"):
        assert fragment in card, fragment
    assert "## Audit" not in card
    everything = "".join(p.read_text(errors="ignore") for p in out.iterdir() if p.suffix in (".md", ".json"))
    for secret in [split["salt"]] + [metrics[k] for k in ("dataset_sha256", "dataset_hmac_sha256") if k in metrics]:
        assert secret not in everything
    assert "n_train" not in everything and "dataset" not in record


def test_audit_headline_goes_into_the_card_and_another_models_audit_is_refused(runs, capsys):
    from dpaudit.report_io import dump_report
    from tests.reports.sample import make_report

    metrics = json.loads((runs["pooler"] / "metrics.json").read_text())
    report = make_report()
    other = runs["root"] / "other-audit.json"
    dump_report(report, other)
    code, _, err = run_cli(capsys, ["export", str(runs["pooler"]), "--out", str(runs["root"] / "x"), "--audit", str(other)])
    assert code == 2
    assert_one_error_line(err, "audits a model with σ=", "not this run")
    assert not (runs["root"] / "x").exists()
    same = dataclasses.replace(report, privacy=dataclasses.replace(
        report.privacy, noise_multiplier=metrics["noise_multiplier"], sample_rate=metrics["sample_rate"],
        steps=metrics["steps"]))
    mine = runs["root"] / "mine-audit.json"
    dump_report(same, mine)
    out = runs["root"] / "with-audit"
    code, _, err = run_cli(capsys, ["export", str(runs["pooler"]), "--out", str(out), "--audit", str(mine)])
    assert code == 0, err
    card = (out / "README.md").read_text()
    assert "## Audit" in card and f"protection level {report.verdict.protection_level}" in card


def test_mean_pooling_run_and_existing_out_are_refused(runs, capsys):
    out = runs["root"] / "mean-out"
    code, _, err = run_cli(capsys, ["export", str(runs["mean"]), "--out", str(out)])
    assert code == 2
    assert_one_error_line(err, "mean-pooling head", "model.pooling=pooler")
    assert not out.exists()
    existing = runs["root"] / "exists"
    existing.mkdir()
    code, _, err = run_cli(capsys, ["export", str(runs["pooler"]), "--out", str(existing)])
    assert code == 2
    assert_one_error_line(err, "already exists")


def test_export_run_python_api(runs):
    import dpaudit

    out = dpaudit.export_run(runs["pooler"], runs["root"] / "api")
    assert (out / "config.json").is_file() and (out / "README.md").is_file()


def test_pooler_pooling_needs_a_pooler():
    from transformers import BertConfig, BertModel

    from dpaudit.errors import ModelError
    from dpaudit.trainers.classifier import BankedClassifier

    cfg = BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=64)
    with pytest.raises(ModelError, match="needs a backbone with a pooler"):
        BankedClassifier.from_backbone(BertModel(cfg, add_pooling_layer=False), num_models=1, num_labels=2,
                                       pooling="pooler")


def test_a_bias_left_unfolded_is_caught_before_anything_is_written(runs, monkeypatch):
    """Mutant: the export forgets one trained bias; the logit check refuses and writes nothing."""
    import dpaudit.export as export
    from dpaudit.errors import CheckpointError

    original = export.build_exported

    def forgetful(model_dir, tables, meta):
        dropped = dict(tables)
        dropped.pop(next(k for k in tables if k.endswith("output.dense")))
        return original(model_dir, dropped, meta)

    monkeypatch.setattr(export, "build_exported", forgetful)
    out = runs["root"] / "mutant"
    with pytest.raises(CheckpointError, match="logits differ"):
        export.export_run(runs["pooler"], out)
    assert not out.exists() and not out.with_name("mutant.partial").exists()


def test_auditing_a_pooler_checkpoint_needs_the_same_pooling(runs, capsys):
    """A checkpoint target scored with the other head would give wrong logits silently: refused up front."""
    run = runs["pooler"]
    code, _, err = run_cli(capsys, ["audit", "--model", str(runs["model"]), "--data", str(runs["csv"]),
                                    "--target", str(run / "models.safetensors"), "--target-members",
                                    str(run / "split.json"), "--run-dir", str(runs["root"] / "audit-mismatch"),
                                    "--set", "data.max_length=16", "--set", "audit.fprs=[0.1]", "--shadows", "4",
                                    "--format", "none", "--quiet"])
    assert code == 2
    assert_one_error_line(err, "model.pooling = 'pooler'")
