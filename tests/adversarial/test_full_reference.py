"""The full fine-tuning reference (``audit.reference = "full_non_private"``) is what teams do without DP.

A reference that quietly trained with the DP plan, or with BiTFiT, would show the reader a "without DP"
model that is in fact protected, and make DP look free. So:

* the reference's logits are those of one full fine-tune (every weight, AdamW, no noise) on row 0 of the
  membership, retrained here independently with :func:`trainers.full.train_full` — a mutant that adds noise,
  trains BiTFiT, or trains on another row gives other logits; no BiTFiT step is taken for it;
* a rerun reuses its stage file and trains nothing; another recipe (``audit.reference_lr``) retrains it;
* its section round-trips the schema, and a tampered one (a DP claim, an unknown kind, an AUC > 1) is refused;
* at a small seeded size it shows leakage: LOSS on the natural rows, and crafted canaries recognised.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import types

import numpy as np
import pytest

from dpaudit.cli.main import main
from dpaudit.report_io import load_report
from dpaudit.rundir import MARKER
from dpaudit.trainers import full
from dpaudit.reports import summary as S
from tests.cli._helpers import assert_one_error_line, run_cli, save_tiny_model, write_csv
from tests.reports import sample

_LR = "0.01"

def _audit(model, csv, run_dir, *extra) -> list[str]:
    return ["audit", "--model", str(model), "--data", str(csv), "--shadows", "2", "--attacks", "loss",
            "--epochs", "1", "--batch-size", "16", "--set", "data.max_length=16", "--set", "audit.fprs=[0.1]",
            "--epsilon", "8", "--reference", "full-non-private", "--set", f"audit.reference_lr={_LR}",
            "--set", "audit.reference_epochs=8", "--set", "audit.reference_batch_size=8",
            "--run-dir", str(run_dir), "--quiet", "--format", "md", *extra]


def _spy(monkeypatch) -> list:
    """Records ``(recipe, seed, training row)`` of every full fine-tune."""
    calls: list = []
    real = full.train_full
    monkeypatch.setattr(full, "train_full",
                        lambda *a, **k: calls.append((a[5], k["seed"], a[3].copy())) or real(*a, **k))
    return calls


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """One audit with the full reference: ``(model, csv, run dir, full fine-tunes, BiTFiT steps)``."""
    from dpaudit.trainers.loop import Trainer

    tmp = tmp_path_factory.mktemp("full_ref")
    model, csv = save_tiny_model(tmp / "bert"), write_csv(tmp / "d.csv", 48)
    with pytest.MonkeyPatch.context() as mp:
        calls, steps = _spy(mp), []
        real = Trainer._train_step
        mp.setattr(Trainer, "_train_step", lambda self: steps.append(self.clf.num_models) or real(self))
        assert main(_audit(model, csv, tmp / "run")) == 0
    return model, csv, tmp / "run", calls, steps


def test_reference_is_one_non_private_full_fine_tune_of_row_0(audited):
    model, csv, run, full_calls, train_steps = audited
    membership = np.load(run / "membership.npy")
    assert len(full_calls) == 1  # one model, not a bank
    recipe, seed, row = full_calls[0]
    assert recipe.non_private and recipe.noise_multiplier == 0.0 and recipe.optimizer == "adamw"
    assert recipe.lr == float(_LR) and np.array_equal(row, membership[0])
    assert set(train_steps) == {3}  # BiTFiT steps only for the audited bank (target + 2 shadows)
    # independent retraining: every weight, AdamW, no noise, on row 0 with the recorded seed
    from dpaudit.data import load_dataset
    from dpaudit.models import load_backbone
    from dpaudit.trainers.batching import EncodedTexts

    ds = load_dataset(path=str(csv), max_examples=None, seed=0)
    _, tokenizer, _ = load_backbone(str(model))
    enc = EncodedTexts.from_dataset(ds, tokenizer, max_length=16)
    again = full.FullRecipe(non_private=True, noise_multiplier=0.0, sample_rate=recipe.sample_rate,
                            steps=recipe.steps, max_grad_norm=1.0, lr=float(_LR), optimizer="adamw", max_length=16,
                            micro_batch_size=8)
    want = full.classifier_logits(full.train_full(str(model), enc, ds.labels, membership[0], 2, again, seed=seed,
                                                  device="cpu"), enc, device="cpu", batch_size=64)
    got = np.load(run / "reference" / "model_logits.npy")[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    report = load_report(run / "audit.json")
    ref = report.reference
    assert ref.kind == "full_non_private" and ref.non_private and ref.noise_multiplier == 0.0
    assert ref.recipe["optimizer"] == "adamw" and [a.name for a in ref.attacks] == ["loss"]
    assert report.utility.non_private_reference == ref.utility.value
    held = ~membership[0]
    assert ref.utility.value == pytest.approx(float((got.argmax(1) == ds.labels)[held].mean()))
    md = (run / "report.md").read_text()
    assert "Without DP (full fine-tuning" in md and "full fine-tuning, non-private (ε = ∞)" in md


def test_rerun_reuses_the_stage_file_and_another_recipe_retrains(tmp_path, audited, monkeypatch):
    model, csv, run, _, _ = audited
    shutil.copytree(run, tmp_path / "run")
    first = json.loads((tmp_path / "run" / MARKER).read_text())["files"]["model_logits.npy"]["sha256"]
    calls = _spy(monkeypatch)
    assert main(_audit(model, csv, tmp_path / "run")) == 0
    assert calls == []  # reused: nothing trained
    assert json.loads((tmp_path / "run" / MARKER).read_text())["files"]["model_logits.npy"]["sha256"] == first
    assert main(_audit(model, csv, tmp_path / "run", "--set", "audit.reference_lr=0.02")) == 0
    assert len(calls) == 1 and calls[0][0].lr == 0.02


@pytest.mark.parametrize("edit, where", [
    (lambda r: r.update(non_private=False), "reference"),
    (lambda r: r.update(kind="full_private"), "reference"),
    (lambda r: r.update(canaries={"count": 4, "kind": "mislabeled", "score_rule": "loss", "guess_fraction": 0.5,
                                  "guesses_in": 1, "guesses_out": 1, "auc": 1.5, "cap": 0.1,
                                  "epsilon_lb": r["attacks"][0]["epsilon_lb"]}), "reference"),
])
def test_tampered_full_reference_is_refused(tmp_path, capsys, audited, edit, where):
    data = json.loads((audited[2] / "audit.json").read_text())
    edit(data["reference"])
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "audit.json").write_text(json.dumps(data), encoding="utf-8")
    code, _, err = run_cli(capsys, ["report", str(tmp_path / "t"), "--output", str(tmp_path / "out"),
                                    "--format", "md"])
    assert code == 2
    assert_one_error_line(err, f"invalid at {where}")


def _learnable_csv(path, n: int, seed: int):
    """Texts whose label a word decides (``good`` → pos, ``bad`` → neg): a mislabeled canary contradicts it."""
    rng = np.random.default_rng(seed)
    filler = ("film movie plot actor scene story long short warm cold").split()
    rows = []
    for i in range(n):
        label = i % 2
        words = [("bad", "good")[label], *rng.choice(filler, size=int(rng.integers(2, 6)))]
        rng.shuffle(words)
        rows.append(" ".join(words) + f",{('neg', 'pos')[label]}")
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_full_reference_recognises_canaries_at_a_small_seeded_size(tmp_path, audited):
    """Crafted (mislabeled) canaries appended last: the full fine-tune fits the included ones."""
    from dpaudit.canaries import make_canaries, with_canaries
    from dpaudit.config import load_config
    from dpaudit.data import load_dataset
    from dpaudit.models import load_backbone
    from dpaudit.pipeline.full_reference import full_reference_section
    from dpaudit.pipeline.stage import npy_bytes
    from dpaudit.report_io import validate_report
    from dpaudit.report_schema import ReferenceSection
    from dpaudit.rundir import RunDir

    model = audited[0]
    csv = _learnable_csv(tmp_path / "d.csv", 80, seed=3)
    natural, canaries = make_canaries(load_dataset(path=str(csv), seed=0), 40, "mislabeled", seed=0)
    ds = with_canaries(natural, canaries)
    backbone, tokenizer, info = load_backbone(str(model))
    pop = types.SimpleNamespace(ds=ds, backbone=backbone, tokenizer=tokenizer, info=info, n_natural=len(natural),
                                canaries=canaries)
    membership = np.random.default_rng(5).random((1, len(ds))) < 0.5
    cfg, _ = load_config(None, [("model", "path", str(model)), ("data", "max_length", 16),
                                ("audit", "reference_lr", 0.003), ("audit", "reference_epochs", 60.0),
                                ("audit", "reference_batch_size", 8), ("audit", "canary_guess_fraction", 0.5),
                                ("audit", "fprs", [0.1])])
    parent = RunDir.claim(tmp_path / "run", command="audit")
    parent.write("membership.npy", npy_bytes(membership))
    ref = full_reference_section(cfg, parent, pop, membership, delta=1e-5, device="cpu", progress=False,
                                 external=False)
    c = ref.canaries
    assert (c["count"], c["kind"], c["score_rule"], c["guesses_in"], c["guesses_out"]) == (40, "mislabeled", "loss",
                                                                                           10, 10)
    assert c["auc"] > 0.65, c  # included canaries fitted, excluded ones not (0.70 on this seed)
    assert ref.attacks[0].status == "ok" and ref.attacks[0].auc > 0.5  # LOSS on the natural rows
    assert ref.epsilon_lb_family["size"] == 2 and c["epsilon_lb"]["family_size"] == 2 and ref.canary is None
    assert c["cap"] >= c["epsilon_lb"]["epsilon_lb"] >= 0
    assert ref.utility.n_eval == int((~membership[0, :len(natural)]).sum())  # canaries are not held-out data
    assert ReferenceSection.from_dict(ref.to_dict()) == ref
    report = sample.make_report()
    validate_report(dataclasses.replace(report, reference=ref, utility=dataclasses.replace(
        report.utility, non_private_reference=ref.utility.value)).to_dict())
    first_screen = S.summarize(dataclasses.replace(report, reference=ref)).reference
    assert first_screen.startswith("Without DP (full fine-tuning, held-out accuracy ")
    assert f"(40 mislabeled), AUC {c['auc']:.3f}" in first_screen


def test_bounds_read_the_canaries_log_prob_and_row_0():
    """Fast case: included canaries with a high log-probability of their label are recognised; LOSS reads only
    the natural rows; the two bounds are one family. A mutant that scored the natural label, read another
    row, or counted canaries as natural examples fails here."""
    from dpaudit.attacks.signals import Signals
    from dpaudit.config import load_config
    from dpaudit.pipeline.full_reference import _bounds

    rng = np.random.default_rng(0)
    n_natural, m = 400, 200
    row = rng.random(n_natural + m) < 0.5
    labels = rng.integers(0, 2, n_natural + m)
    margin = np.where(row, 4.0, -4.0) + rng.normal(0, 1, n_natural + m)  # members fitted, others not
    margin[:n_natural] = rng.normal(0, 1, n_natural)  # natural rows: no signal
    logits = np.zeros((1, n_natural + m, 2))
    logits[0, np.arange(n_natural + m), labels] = margin
    cfg, _ = load_config(None, [("audit", "canary_guess_fraction", 0.4), ("audit", "fprs", [0.1])])
    results, canary, family, section = _bounds(cfg, Signals(logits, labels), row, n_natural, 1e-5, False,
                                               "mislabeled")
    assert canary is None and family["size"] == 2 and [r.name for r in results] == ["loss"]
    assert results[0].n_members + results[0].n_nonmembers == n_natural and abs(results[0].auc - 0.5) < 0.1
    assert section["auc"] > 0.99 and section["epsilon_lb"]["epsilon_lb"] > 1.0
    assert section["epsilon_lb"]["family_size"] == 2 and section["cap"] >= section["epsilon_lb"]["epsilon_lb"]
    flipped = _bounds(cfg, Signals(logits, labels), ~row, n_natural, 1e-5, False, "mislabeled")[3]
    assert flipped["auc"] < 0.01 and flipped["epsilon_lb"]["epsilon_lb"] == 0.0
