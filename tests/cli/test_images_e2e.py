"""End to end on images: a user's ImageFolder of PNGs and a local tiny Hugging Face ViT directory through
``dpaudit train`` → ``export`` and ``dpaudit audit`` (BiasBank target + shadows, mislabeled canaries, the
full non-private reference, report) → ``gate``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tests.cli._helpers import run_cli
from tests.trainers._vision_tiny import save_tiny_vit

CLASSES = ("blob", "bars", "lines")


def write_image_folder(root, per_class: int = 24, size: int = 12, seed: int = 0):
    """``root/<class>/<i>.png``: grey 12×12 images whose class is a bright pattern over noise."""
    rng = np.random.default_rng(seed)
    for k, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            a = rng.integers(0, 60, (size, size), dtype=np.uint8)
            if k == 0:
                a[3:9, 3:9] += 150
            elif k == 1:
                a[:, : size // 2] += 150
            else:
                a[::3] += 150
            Image.fromarray(a, "L").save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return write_image_folder(root / "data"), save_tiny_vit(root / "vit", image_size=12), root


@pytest.mark.slow
def test_train_and_export_an_image_folder(world, capsys):
    data, vit, root = world
    code, out, err = run_cli(capsys, ["train", "--data", str(data), "--model", str(vit), "--run-dir",
                                      str(root / "train"), "--epsilon", "8", "--batch-size", "12", "--epochs", "1",
                                      "--quiet"])
    assert code == 0, err
    assert "3 classes: bars, blob, lines (72 images 12×12×1)" in out + err
    metrics = json.loads((root / "train" / "metrics.json").read_text())
    assert metrics["steps"] >= 1 and 0.0 <= metrics["heldout_accuracy"] <= 1.0
    code, out, err = run_cli(capsys, ["export", str(root / "train"), "--out", str(root / "exported")])
    assert code == 0, err
    assert "AutoModelForImageClassification" in out
    from transformers import AutoModelForImageClassification

    model = AutoModelForImageClassification.from_pretrained(root / "exported")
    assert model.config.id2label == {0: "bars", 1: "blob", 2: "lines"}
    # the exported model audited as a target trained elsewhere (an image-classifier directory)
    code, out, err = run_cli(capsys, [
        "audit", "--data", str(data), "--model", str(vit), "--run-dir", str(root / "external"), "--target",
        str(root / "exported"), "--target-members", str(root / "train" / "split.json"), "--batch-size", "12",
        "--epochs", "1", "--shadows", "4", "--attacks", "loss,lira_offline", "--quiet"])
    assert code == 0, err
    report = json.loads((root / "external" / "audit.json").read_text())
    assert report["run"]["target"]["kind"] == "hf"


def test_audit_and_gate_an_image_folder(world, capsys):
    data, vit, root = world
    run = root / "audit"
    code, out, err = run_cli(capsys, [
        "audit", "--data", str(data), "--model", str(vit), "--run-dir", str(run), "--epsilon", "8",
        "--batch-size", "12", "--epochs", "1", "--shadows", "4", "--canary-count", "12", "--canary-kind",
        "mislabeled", "--reference", "full-non-private", "--set", "audit.reference_epochs=1", "--set",
        "audit.reference_batch_size=12", "--set", "audit.canary_guess_fraction=0.4", "--attacks", "loss,lira_offline", "--quiet"])
    assert code == 0, err
    report = json.loads((run / "audit.json").read_text())
    assert report["canaries"]["count"] == 12 and report["canaries"]["kind"] == "mislabeled"
    assert 0.0 <= report["canaries"]["auc"] <= 1.0
    assert report["reference"]["kind"] == "full_non_private" and report["reference"]["canaries"]["count"] == 12
    assert {a["name"] for a in report["attacks"]} >= {"loss", "lira_offline"}
    html = (run / "report.html").read_text(encoding="utf-8")
    pictures = json.loads((run / "canary_images.json").read_text())["canaries"]
    assert 1 <= len(pictures) <= 8 and html.count('alt="canary trained as') == len(pictures)
    assert (run / "canary_images.json").stat().st_mode & 0o077 == 0  # confidential, like audit.json
    public = (run / "summary.json").read_text(encoding="utf-8")
    assert "image/png" not in public and pictures[0]["png"][:40] not in public
    assert pictures[0]["png"][:40] not in (run / "audit.json").read_text(encoding="utf-8")
    code, out, err = run_cli(capsys, ["gate", str(run / "audit.json"), "--policy", "configs/policy.toml"])
    assert code in (0, 1, 3), err  # a verdict, whichever it is: the gate reads an image audit like any other
    assert "policy" in out
