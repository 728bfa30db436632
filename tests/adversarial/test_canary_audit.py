"""Canaries in the audit population (``audit.canaries``): secret inclusion, kept out of the natural metrics,
and an audit without power is inconclusive, never a pass.

* the canaries' inclusion (row 0 of ``membership.npy``, 0600) is in no other file of the run directory, in
  any plain encoding (bytes, bits, a JSON list of flags or of indices);
* held-out accuracy and the attacks count natural examples only (a mutant that counts the canaries changes
  the number: mislabeled canaries are predicted wrong by design);
* a 1-step audit gated by the shipped ``configs/policy.toml`` is inconclusive (exit 3), with the power checks
  saying why, and its protection level is "not_measurable".
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import numpy as np
import pytest

from dpaudit.attacks.signals import Signals
from dpaudit.pipeline.report import utility
from dpaudit.report_io import load_report
from tests.cli._helpers import run_cli, save_tiny_model, write_csv

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--epochs", "1", "--batch-size", "16", "--set", "data.max_length=16", "--quiet", "--shadows", "4",
        "--set", "audit.fprs=[0.1]", "--format", "html,md"]


@pytest.fixture(scope="module")
def canary_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("canaries")
    model, data = save_tiny_model(root / "bert"), write_csv(root / "a.csv", 120)
    run_dir = root / "run"
    from dpaudit.cli.main import main

    code = main(["audit", "--model", str(model), "--data", str(data), "--epsilon", "8", "--canary-count", "40",
                 "--run-dir", str(run_dir), *FAST])
    assert code == 0
    return run_dir


def _encodings(included: np.ndarray, index: np.ndarray) -> list[bytes]:
    flags = [bool(b) for b in included]
    return [included.astype(np.uint8).tobytes(), included.astype(np.bool_).tobytes(), np.packbits(included).tobytes(),
            "".join("1" if b else "0" for b in flags).encode(), json.dumps(flags).encode(),
            json.dumps([int(b) for b in flags]).encode(), json.dumps([int(i) for i in index[included]]).encode()]


def test_canary_inclusion_is_in_no_file_but_the_private_membership(canary_run):
    membership = np.load(canary_run / "membership.npy")
    report = load_report(canary_run / "audit.json")
    m = report.canaries["count"]
    assert m == 40 and membership.shape[1] == report.run.dataset["n_population"] == 120
    assert stat.S_IMODE((canary_run / "membership.npy").stat().st_mode) == 0o600
    index = np.arange(membership.shape[1] - m, membership.shape[1])
    included = membership[0, index]
    assert 0 < included.sum() < m  # a fair coin each (P[all equal] = 2^-39)
    patterns = _encodings(included, index)
    files = [p for p in canary_run.rglob("*") if p.is_file() and p.name != "membership.npy"]
    assert any(p.name == "audit.json" for p in files) and any(p.name == "report.html" for p in files)
    for path in files:
        data = path.read_bytes()
        leaked = [i for i, pattern in enumerate(patterns) if pattern in data]
        assert not leaked, (path.name, leaked)


def test_canaries_are_not_in_held_out_accuracy_nor_in_the_attacks(canary_run):
    membership = np.load(canary_run / "membership.npy")
    report = load_report(canary_run / "audit.json")
    n_natural = membership.shape[1] - report.canaries["count"]
    assert report.utility.n_eval == int((~membership[0, :n_natural]).sum())
    for attack in report.attacks:
        assert attack.n_members + attack.n_nonmembers == n_natural
    assert report.canaries["epsilon_lb"]["n_in"] + report.canaries["epsilon_lb"]["n_out"] == 40
    assert {m["source"] for m in report.epsilon_lb_family["members"]} >= {"canary", "canaries"}


def test_utility_counts_natural_examples_only():
    """Natural examples all right, canaries all wrong: accuracy 1.0; counting the canaries (mutant) is not."""
    rng = np.random.default_rng(0)
    n, m, labels = 30, 10, rng.integers(0, 2, 40)
    logits = np.zeros((2, 40, 2), dtype=np.float32)
    logits[:, np.arange(40), labels] = 1.0
    logits[:, n:] = logits[:, n:, ::-1]  # every canary predicted wrong
    membership = rng.random((2, 40)) < 0.5
    signals = Signals(logits, labels)
    right = utility(signals, membership, labels, n_natural=n)
    assert right.value == 1.0 and right.n_eval == int((~membership[0, :n]).sum())
    counted = utility(signals, membership, labels)  # the mutant: canaries counted
    assert counted.value < 1.0


def test_one_step_audit_is_inconclusive_under_the_shipped_policy(tmp_path, capsys):
    model, data = save_tiny_model(tmp_path / "bert"), write_csv(tmp_path / "a.csv", 1000)
    run_dir = tmp_path / "run"
    code, out, err = run_cli(capsys, ["audit", "--model", str(model), "--data", str(data), "--epsilon", "4",
                                      "--run-dir", str(run_dir), "--epochs", "1", "--batch-size", "400",
                                      "--set", "data.max_length=8", "--quiet", "--shadows", "4", "--format", "none",
                                      "--set", "audit.fprs=[0.01,0.1]"])
    assert code == 0, err
    report = load_report(run_dir / "audit.json")
    assert report.privacy.steps == 1 and report.power["measurable"] is False
    assert report.verdict.protection_level in ("not_measurable", "weak")
    code, out, _ = run_cli(capsys, ["gate", str(run_dir / "audit.json"), "--policy", str(ROOT / "configs/policy.toml")])
    assert code == 3, out
    assert "min_steps" in out and "min_canary_cap" in out and "INCONCLUSIVE" in out


@pytest.mark.parametrize("overrides, match", [
    ([("audit", "canaries", 40), ("target", "path", "scores.npy"), ("target", "members", "members.json")],
     "only a target trained in this run"),
    ([("audit", "canaries", 10)], "too few canaries"),
    ([("audit", "canaries", 200), ("audit", "canary_score", "lira_offline"), ("audit", "num_shadows", 2),
      ("audit", "attacks", ["loss"])], "needs ≥ 4 shadows"),
    ([("audit", "canary_kind", "secret")], "canary_kind"),
])
def test_canary_settings_are_refused_before_any_work(overrides, match, tmp_path, monkeypatch):
    from dpaudit.config import load_config
    from dpaudit.errors import DpauditError
    from dpaudit.pipeline.run import check_audit_config

    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "scores.npy", np.zeros((4, 2), dtype=np.float32))
    (tmp_path / "members.json").write_text("[0, 1]")
    with pytest.raises(DpauditError, match=match):
        cfg, _ = load_config(None, overrides)
        check_audit_config(cfg)


def test_canary_kinds_in_the_config_are_the_registered_ones():
    from dpaudit.canaries import CANARY_KINDS
    from dpaudit.config import CHOICES

    assert set(CHOICES["audit", "canary_kind"]) == set(CANARY_KINDS)
