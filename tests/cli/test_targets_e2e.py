"""``dpaudit audit`` end to end on real inputs (embedded encoder and data, N = 120): a non-private HF
Trainer full fine-tune found leakier than a DP-BiTFiT target at ε = 8, an Opacus target with the claim its
trainer printed, a black-box logits file, and a saved ``datasets`` directory with ``full`` shadows."""

from __future__ import annotations

import numpy as np
import pytest

from tests.cli._e2e import (AUDIT, HF_LR, N, black_box_logits, members_of, strongest, train_hf, train_opacus)
from tests.cli._helpers import run_cli


@pytest.fixture(scope="module")
def hf_target(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("hf-target")
    train_hf(root / "hf")
    return {"model": root / "hf" / "model", "members": root / "hf" / "members.json", "root": root}


@pytest.fixture(scope="module")
def hf_audit(hf_target, tmp_path_factory) -> dict:
    """The HF target audited with the default (bitfit) shadows, no claim."""
    from dpaudit.cli.main import main

    run_dir = tmp_path_factory.mktemp("hf-audit") / "run"
    assert main([*AUDIT, "--target", str(hf_target["model"]), "--target-members", str(hf_target["members"]),
                 "--run-dir", str(run_dir)]) == 0
    return {"run_dir": run_dir}


def test_hf_full_finetune_is_leakier_than_dp_bitfit_at_eps8(tmp_path, capsys, hf_audit):
    code, _, err = run_cli(capsys, [*AUDIT, "--epsilon", "8", "--run-dir", str(tmp_path / "dp")])
    assert code == 0, err
    hf_report, hf_best = strongest(hf_audit["run_dir"])
    dp_report, dp_best = strongest(tmp_path / "dp")
    assert hf_report.privacy.claim_source == "none" and hf_report.privacy.non_private
    assert dp_report.privacy.claim_source == "accountant" and dp_report.privacy.epsilon <= 8.0
    assert hf_report.run.dataset["sha256"] == dp_report.run.dataset["sha256"]  # the same population
    assert hf_report.run.target["kind"] == "hf" and hf_report.run.target["recipe_differs"]  # bitfit shadows
    # the report's numbers: strongest attack AUC and TPR at 10% FPR
    hf_tpr, dp_tpr = (next(t.tpr for t in b.tpr_at_fpr if t.fpr == 0.1) for b in (hf_best, dp_best))
    assert hf_best.auc > dp_best.auc + 0.1, (hf_best.name, hf_best.auc, dp_best.name, dp_best.auc)
    assert hf_tpr > dp_tpr, (hf_tpr, dp_tpr)
    assert hf_best.auc > 0.7


def test_opacus_target_with_the_claim_its_trainer_printed(tmp_path, capsys):
    claim = train_opacus(tmp_path / "op", capsys)
    run_dir = tmp_path / "run"
    code, out, err = run_cli(capsys, [*AUDIT, "--target", str(tmp_path / "op" / "model"), "--target-members",
                                      str(tmp_path / "op" / "members.json"), "--target-recipe", "bitfit",
                                      "--claim-noise-multiplier", claim["sigma"], "--claim-sample-rate", claim["q"],
                                      "--claim-steps", claim["steps"], "--claim-delta", claim["delta"],
                                      "--run-dir", str(run_dir)])
    assert code == 0, err
    report, best = strongest(run_dir)
    p = report.privacy
    assert p.claim_source == "user" and not p.non_private and p.profile is not None
    assert p.epsilon == pytest.approx(claim["epsilon"], rel=0.02)  # dpaudit's accountant agrees with Opacus'
    assert (p.noise_multiplier, p.sample_rate, p.steps) == (float(claim["sigma"]), float(claim["q"]),
                                                            int(claim["steps"]))
    assert not report.run.target["recipe_differs"]  # BiTFiT target, stated, σ/q/steps known
    assert "stated by the user" in (run_dir / "report.md").read_text()
    assert best is not None


@pytest.mark.slow
def test_black_box_logits_file_matches_the_hf_audit(tmp_path, capsys, hf_target, hf_audit):
    """``slow``: the default suite proves its claims on a tiny classifier in tests/cli/test_audit_targets.py —
    dpaudit's scoring of an HF dir equals logits computed with plain transformers
    (``test_hf_classifier_with_user_rate_claim``), and a logits file is audited as a claim-less target
    (``test_scores_file_without_claim_is_gated_as_not_private``); equal logits give equal attacks."""
    scores = tmp_path / "scores.npy"
    np.save(scores, black_box_logits(hf_target["model"]))
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, [*AUDIT, "--target", str(scores), "--target-members", str(hf_target["members"]),
                                    "--run-dir", str(run_dir)])
    assert code == 0, err
    report, best = strongest(run_dir)
    t = report.run.target
    assert t["kind"] == "scores" and t["source"] == "scores.npy" and "supplied by the user" in t["obtained"]
    assert t["recipe_differs"] and report.privacy.claim_source == "none"
    # dpaudit's own scoring of the HF dir and the black-box file agree, and so do the attacks on them
    np.testing.assert_allclose(np.load(run_dir / "signals.npz")["logits"][0],
                               np.load(hf_audit["run_dir"] / "target_logits.npy"), atol=1e-3)
    _, hf_best = strongest(hf_audit["run_dir"])
    assert best.auc == pytest.approx(hf_best.auc, abs=0.02)


@pytest.mark.slow
def test_datasets_directory_population_with_full_shadows(tmp_path, capsys, monkeypatch, hf_target, hf_audit):
    """``slow`` (4 full fine-tunes of the 22M-weight encoder): the default suite covers a ``datasets``
    directory as the population in tests/test_data.py (``test_dpaudit_train_on_a_saved_dataset``), ``full``
    shadows trained and resumed without retraining in tests/adversarial/test_any_target_e2e.py
    (``test_rerun_shadows_retrains_full_shadows``), and the full recipe itself in tests/trainers/test_full.py."""
    from datasets import ClassLabel, Dataset, Features, Value

    import dpaudit.trainers.full as full
    from dpaudit.data import load_dataset

    ds = load_dataset(path="embedded", max_examples=N, seed=0)
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(ds.label_names))})
    Dataset.from_dict({"text": list(ds.texts), "label": ds.labels.tolist()}, features=features).save_to_disk(
        str(tmp_path / "reviews"))
    trained: list[int] = []
    original = full.train_full
    monkeypatch.setattr(full, "train_full", lambda *a, **k: trained.append(1) or original(*a, **k))
    run_dir = tmp_path / "run"
    argv = [*AUDIT, "--data", str(tmp_path / "reviews"), "--target", str(hf_target["model"]), "--target-members",
            str(hf_target["members"]), "--shadow-recipe", "full", "--target-recipe", "full", "--set",
            f"optim.lr={HF_LR}", "--set", "optim.optimizer=adamw", "--run-dir", str(run_dir)]
    code, _, err = run_cli(capsys, argv)
    assert code == 0, err
    report, best = strongest(run_dir)
    assert report.run.dataset["n_population"] == N and report.run.dataset["source"] == "reviews"
    t = report.run.target
    assert t["shadow_recipe"] == "full" and not t["recipe_differs"] and t["warning"] is None
    assert report.run.model["n_trainable"] > 20_000_000  # every weight of the encoder, not the biases
    assert len(trained) == 4 and all((run_dir / f"shadow-full-{k:03d}.npy").is_file() for k in range(4))
    # the same texts in the same order: the same target logits as the embedded-data audit
    np.testing.assert_allclose(np.load(run_dir / "target_logits.npy"),
                               np.load(hf_audit["run_dir"] / "target_logits.npy"), atol=1e-5)
    member_rows = np.load(run_dir / "membership.npy")[0]
    assert np.array_equal(np.flatnonzero(member_rows), members_of(hf_target["members"]))
    assert best is not None
    # a rerun resumes: no model is trained again
    code, _, err = run_cli(capsys, argv)
    assert code == 0, err
    assert len(trained) == 4
