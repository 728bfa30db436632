"""`dpaudit audit --mechanism-check`: the white-box check of the target's own DP step inside the audit."""

from __future__ import annotations

import json
import math

from dpaudit.report_io import load_report
from tests.cli._helpers import assert_one_error_line, run_cli

BASE = ["audit", "--max-examples", "120", "--shadows", "2", "--attacks", "loss", "--epochs", "1",
        "--batch-size", "30", "--set", "data.max_length=16", "--set", "audit.fprs=[0.1]", "--set",
        "audit.mechanism_canaries=2000", "--epsilon", "4", "--quiet", "--format", "none"]


def test_audit_states_the_check_of_its_own_claim_and_reuses_it(tmp_path, capsys, train_steps):
    run_dir = tmp_path / "audit"
    policy = tmp_path / "policy.toml"
    policy.write_text('name = "mc"\nrequire_mechanism_check = true\n')
    code, out, err = run_cli(capsys, BASE + ["--mechanism-check", "--run-dir", str(run_dir)])
    assert code == 0, err
    report = load_report(run_dir / "audit.json")
    mc = report.mechanism_check
    assert mc is not None and mc.num_canaries == 2000
    # The check verified exactly the report's claim: same ε (σ, q, steps of the target's bank) and δ.
    p = report.privacy  # verify checks the add/remove mechanism (a canary present or absent)
    from dpaudit.privacy import compute_epsilon

    add_remove = compute_epsilon(noise_multiplier=p.noise_multiplier, sample_rate=p.sample_rate, steps=p.steps,
                                 delta=p.delta, accountant=p.accountant, neighbouring="add_remove")
    assert math.isclose(mc.claimed_epsilon, add_remove, rel_tol=1e-6) and add_remove <= p.epsilon
    assert mc.delta == report.privacy.delta and mc.sample_rate == report.privacy.sample_rate
    assert mc.passed and mc.epsilon_lower_bound <= mc.claimed_epsilon
    code, out, err = run_cli(capsys, ["gate", str(run_dir / "audit.json"), "--policy", str(policy)])
    assert code == 0, out + err
    # Rerun: nothing retrained, the committed check reused.
    train_steps.clear()
    first = json.loads((run_dir / "mechanism_check.json").read_text())
    code, _, err = run_cli(capsys, BASE + ["--mechanism-check", "--run-dir", str(run_dir)])
    assert code == 0, err
    assert train_steps == []
    assert json.loads((run_dir / "mechanism_check.json").read_text()) == first


def test_mechanism_check_needs_a_dp_target_trained_here(tmp_path, capsys):
    code, _, err = run_cli(capsys, BASE + ["--mechanism-check", "--non-private", "--run-dir", str(tmp_path / "a")])
    assert code == 2
    assert_one_error_line(err, "audit.mechanism_check needs a DP target")
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())
