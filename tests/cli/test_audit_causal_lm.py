"""``dpaudit audit --task causal-lm`` end to end on a tiny random Llama: the LM attacks and the secret canaries
reach a valid audit.json (its optional ``causal_lm`` section) and the confidential report; summary.json stays
free of membership-dependent numbers and of the secrets."""

from __future__ import annotations

import json

import pytest

from dpaudit.lm_canaries import CANARIES_FILE, read_canaries_record
from dpaudit.report_io import load_report

from tests.cli._helpers import run_cli
from tests.cli.test_train_causal_lm import _corpus, save_tiny_causal_lm


@pytest.mark.slow
def test_audit_causal_lm_end_to_end(tmp_path, capsys):
    model = save_tiny_causal_lm(tmp_path / "lm")
    capsys.readouterr()
    data = _corpus(tmp_path / "c.csv", n=40)
    run = tmp_path / "audit"
    args = ["audit", "--task", "causal-lm", "--model", str(model), "--data", str(data), "--max-length", "12",
            "--epsilon", "8", "--epochs", "1", "--batch-size", "8", "--shadows", "2", "--set", "audit.canaries=20",
            "--run-dir", str(run), "--quiet", "--format", "md"]
    code, out, err = run_cli(capsys, args)
    assert code == 0, err
    report = load_report(run / "audit.json")  # validates against the schema
    names = [a.name for a in report.attacks]
    assert names == report.causal_lm["attacks"] and {"lm_loss", "zlib", "min_k", "min_k_pp", "ref_ratio",
                                                     "lm_rmia"} <= set(names)
    assert "lm_lira" not in names  # 2 complementary shadows: one OUT shadow per text, no variance
    assert report.canaries["kind"] == "lm_secret" and report.canaries["count"] == 20
    exp = report.causal_lm["exposure"]
    assert exp["included"]["n"] + exp["excluded"]["n"] == 20 and 0 <= exp["space_bits"] - 6 * 3.3219 < 1e-3
    assert len(report.causal_lm["generations"]["after"]) == 3
    assert report.utility.metric == "perplexity" and report.utility.value > 1.0
    md = (run / "report.md").read_text()
    assert "Secret Sharer exposure" in md and "the secret number is" in md
    summary = (run / "summary.json").read_text()
    assert "secret number" not in summary and "auc" not in summary
    saved, first = read_canaries_record(json.loads((run / CANARIES_FILE).read_text()))  # secret: 0600 (below)
    assert len(saved) == 20 and first == 40 and len(saved.candidates) == 200
    public = [f for f in run.iterdir() if f.stat().st_mode & 0o077]
    assert [f.name for f in public] == ["summary.json"]
    assert not any(s in f.read_text() for f in public for s in saved.secrets)  # no public file holds a secret
    assert json.loads(summary)["audit"]["attacks"] == names
    for f in run.iterdir():  # every file but the public summary is private (0600): coins, scores, generations
        assert f.name == "summary.json" or f.stat().st_mode & 0o077 == 0, f.name
    kept = {name: (run / name).read_bytes() for name in ("membership.npy", CANARIES_FILE, "models.safetensors")}
    code, out, err = run_cli(capsys, ["audit", "--task", "causal-lm", "--model", str(model), "--data", str(data),
                                      "--max-length", "12", "--epsilon", "4", "--epochs", "1", "--batch-size", "8",
                                      "--shadows", "2", "--set", "audit.canaries=20", "--run-dir", str(run),
                                      "--quiet"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "holds a run of other inputs" in err, err
    code, out, err = run_cli(capsys, args)  # the same audit again: resumed, never new coins or secrets
    assert code == 0, err
    assert {name: (run / name).read_bytes() for name in kept} == kept
    again = load_report(run / "audit.json")
    assert [(a.name, a.auc) for a in again.attacks] == [(a.name, a.auc) for a in report.attacks]
    assert again.canaries == report.canaries and again.causal_lm == report.causal_lm
