"""The non-private reference is context, never evidence: attacks on how it could mislead.

* a report whose reference section claims a DP guarantee, or states a reference accuracy the reference did
  not measure, is refused with one line (the gate and the renderers never see it);
* the gate's checks are the same with and without a reference, whatever the reference shows;
* an odd but valid reference (no conclusive attack, no canary) renders without a crash;
* a ``reference/`` directory from another run (another membership) is never reused: the bank is retrained
  on this run's membership, and the main bank is not touched.
"""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from dpaudit.cli.main import main
from dpaudit.report_io import dump_report, load_report
from dpaudit.reports.gate import evaluate
from dpaudit.reports.html import render_html
from dpaudit.reports.markdown import render_markdown
from dpaudit.reports.pdf import find_chromium, write_pdf
from dpaudit.reports.policy import parse_policy
from dpaudit.rundir import MARKER
from tests.cli._helpers import assert_one_error_line, run_cli, save_tiny_model, write_csv
from tests.reports import sample
from tests.reports.test_reference_report import with_reference

POLICY = {"name": "release", "max_epsilon": 8.0, "max_auc": 0.6, "max_epsilon_lb": 2.0,
          "min_protection_level": "moderate", "allow_non_private": False,
          "max_tpr_at_fpr": [{"fpr": 0.01, "max_tpr": 0.05}]}


def _write(tmp_path, data: dict):
    path = tmp_path / "audit.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.mark.parametrize("edit, where", [
    (lambda d: d["reference"].update(non_private=False), "reference"),
    (lambda d: d["reference"].update(noise_multiplier=1.1), "reference"),
    (lambda d: d["reference"].update(epsilon=1.0), "reference"),
    (lambda d: d["utility"].update(non_private_reference=0.99), "utility/non_private_reference"),
    (lambda d: d["reference"]["attacks"][0]["roc"]["tpr"].pop(), "reference/attacks/0/roc"),
    (lambda d: d["reference"]["attacks"][1]["histogram"]["bin_edges"].pop(), "reference/attacks/1/histogram"),
])
@pytest.mark.parametrize("command", ["gate", "report"])
def test_tampered_reference_is_one_error_line(tmp_path, capsys, edit, where, command):
    data = with_reference(sample.make_report()).to_dict()
    edit(data)
    path = _write(tmp_path, data)
    argv = (["gate", str(path), "--policy", str(tmp_path / "p.toml")] if command == "gate"
            else ["report", str(tmp_path), "--output", str(tmp_path / "out"), "--format", "html,md,pdf"])
    (tmp_path / "p.toml").write_text('name = "x"\nmax_auc = 0.6\n', encoding="utf-8")
    code, _, err = run_cli(capsys, argv)
    assert code == 2
    assert_one_error_line(err, f"invalid at {where}")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("target_mu, ref_shift", [(0.8, 3.0), (3.0, 0.0)])
def test_gate_never_reads_the_reference(target_mu, ref_shift):
    """A leaky reference cannot fail a private target, and a quiet reference cannot pass a leaky one."""
    policy = parse_policy(POLICY, name="x")
    report = sample.make_report(mu=target_mu)
    if target_mu > 1:  # a leaky target: its attacks shifted far apart
        report = dataclasses.replace(report, attacks=tuple(
            sample.gaussian_attack(a.name, a.paper, 1.5, seed=20 + i) for i, a in enumerate(report.attacks)))
    plain = evaluate(report, policy)
    assert evaluate(with_reference(report, shift=ref_shift), policy) == plain


def test_odd_but_valid_reference_renders(tmp_path):
    report = with_reference(sample.make_report())
    inconclusive = tuple(dataclasses.replace(a, status="inconclusive", reason="too few scores", auc=None,
                                             balanced_accuracy=None, advantage=None)
                         for a in report.reference.attacks)
    for ref in (dataclasses.replace(report.reference, attacks=inconclusive, canary=None, strongest_attack="nope"),
                dataclasses.replace(report.reference, attacks=(), canary=None, strongest_attack=None)):
        odd = dataclasses.replace(report, reference=ref)
        dump_report(odd, tmp_path / "audit.json")
        loaded = load_report(tmp_path / "audit.json")
        assert "no attack produced a conclusive result" in render_html(loaded, dpi=30)
        assert "### Without DP vs with DP" in render_markdown(loaded)
        if find_chromium() is not None:  # the PDF is the HTML printed by Chromium
            write_pdf(loaded, tmp_path / "r.pdf")


def _audit(model, csv, run_dir, *extra) -> list[str]:
    return ["audit", "--model", str(model), "--data", str(csv), "--shadows", "4", "--epochs", "1",
            "--batch-size", "16", "--set", "data.max_length=16", "--set", "audit.fprs=[0.1]", "--epsilon", "8",
            "--run-dir", str(run_dir), "--quiet", "--format", "none", *extra]


def _recorded(run_dir, name: str) -> str:
    return json.loads((run_dir / MARKER).read_text())["files"][name]["sha256"]


def test_reference_from_another_membership_is_retrained(tmp_path, capsys, train_steps):
    model, csv = save_tiny_model(tmp_path / "bert"), write_csv(tmp_path / "d.csv", 60)
    other, run = tmp_path / "other", tmp_path / "run"
    assert main(_audit(model, csv, other, "--reference", "non-private")) == 0
    assert main(_audit(model, csv, run)) == 0  # no reference yet
    main_bank = _recorded(run, "models.safetensors")
    assert not np.array_equal(np.load(other / "membership.npy"), np.load(run / "membership.npy"))
    shutil.copytree(other / "reference", run / "reference")  # a stale, self-consistent reference dir
    train_steps.clear()
    code, _, err = run_cli(capsys, _audit(model, csv, run, "--reference", "non-private"))
    assert code == 0, err
    assert train_steps, "the stale reference bank was reused"
    assert np.array_equal(np.load(run / "reference" / "membership.npy"), np.load(run / "membership.npy"))
    report = load_report(run / "audit.json")
    membership = np.load(run / "membership.npy")
    logits = np.load(run / "reference" / "signals.npz")["logits"]
    labels = np.load(run / "reference" / "signals.npz")["labels"]
    held_out = ~membership[0]
    assert report.reference.utility.value == pytest.approx(float((logits[0].argmax(1) == labels)[held_out].mean()))
    assert _recorded(run, "models.safetensors") == main_bank  # the main bank was resumed, not retrained
