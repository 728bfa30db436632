"""``examples/``: each training script runs at tiny size and writes what an audit needs.

The scripts train targets "elsewhere" (the HF Trainer, Opacus); these tests check that their output is a
loadable Hugging Face classifier, that ``members.json`` holds a random half of dpaudit's population (indices
into ``load_dataset(path="embedded", max_examples=N, seed=S)``, readable as the audit's member ids), and that
the Opacus script prints a complete, consistent claim.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dpaudit.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--max-examples", "40", "--max-length", "16", "--epochs", "1", "--population-seed", "3", "--seed", "4"]


def run_example(script: str, *argv: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), *argv], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def check_outputs(out: Path) -> dict:
    from transformers import AutoModelForSequenceClassification

    record = json.loads((out / "members.json").read_text())
    ds = load_dataset(path="embedded", max_examples=40, seed=3)
    assert record["population"]["dataset_sha256"] == ds.sha256
    ids = np.asarray(record["train"])
    assert len(ids) == 20 and len(set(ids.tolist())) == 20 and ids.min() >= 0 and ids.max() < 40
    assert ids.tolist() == sorted(np.random.default_rng(4).choice(40, size=20, replace=False).tolist())
    model = AutoModelForSequenceClassification.from_pretrained(out / "model", local_files_only=True)
    assert model.config.num_labels == 2 and model.config.id2label == {0: "rotten", 1: "fresh"}
    assert (out / "model" / "tokenizer.json").is_file() and not (out / "model" / "training_args.bin").exists()
    return record


@pytest.mark.slow
def test_hf_trainer_example(tmp_path):
    stdout = run_example("train_hf_trainer.py", *TINY, "--out", str(tmp_path / "hf"))
    assert "no DP claim" in stdout
    assert check_outputs(tmp_path / "hf")["non_private"] is True


@pytest.mark.slow
def test_opacus_example_states_its_claim(tmp_path):
    stdout = run_example("train_opacus.py", *TINY, "--batch-size", "8", "--epsilon", "4", "--out", str(tmp_path / "op"))
    claim = check_outputs(tmp_path / "op")["claim"]
    line = re.search(r"claim: sigma=(\S+) q=(\S+) steps=(\d+) delta=(\S+) epsilon=(\S+)", stdout)
    assert line, stdout
    assert claim["delta"] == pytest.approx(1 / 200)
    assert claim["steps"] == int(line.group(3)) == round(1 / claim["sample_rate"])  # one epoch
    assert claim["sample_rate"] == pytest.approx(1 / 3) and claim["noise_multiplier"] > 0
    assert 3.0 < claim["epsilon"] <= 4.0 + 1e-6
    # the claim is dpaudit-checkable: its own accountant gives the same ε for (σ, q, steps, δ)
    from dpaudit.privacy import compute_epsilon

    eps = compute_epsilon(noise_multiplier=claim["noise_multiplier"], sample_rate=claim["sample_rate"],
                          steps=claim["steps"], delta=claim["delta"], accountant="prv",
                          neighbouring="add_remove")  # an opacus claim
    assert eps == pytest.approx(claim["epsilon"], rel=0.05)


@pytest.mark.slow
def test_canaries_example_gives_each_model_a_bound(tmp_path):
    """examples/canaries_hf_trainer.sh at tiny size: make → HF Trainer and Opacus on DIR's training file →
    two audits on the canaries, each a one-run bound (the Opacus one with the claim Opacus accounted)."""
    from tests.cli._helpers import save_tiny_model

    from dpaudit.report_io import load_report

    model = save_tiny_model(tmp_path / "bert")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OUT": str(tmp_path / "out"),
           "COUNT": "40", "EPOCHS": "1", "MAX_LENGTH": "16", "MODEL": str(model)}
    proc = subprocess.run(["bash", str(ROOT / "examples" / "canaries_hf_trainer.sh")], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    hf = load_report(tmp_path / "out" / "hf-audit" / "audit.json")
    opacus = load_report(tmp_path / "out" / "opacus-audit" / "audit.json")
    for report in (hf, opacus):
        assert report.canaries["count"] == 40 and report.canaries["epsilon_lb"]["kind"] == "bound"
    assert hf.privacy.claim_source == "none" and opacus.privacy.claim_source == "user"
    assert opacus.privacy.epsilon == pytest.approx(8.0, rel=0.05)
