"""``dpaudit gate`` on a causal-LM audit.json with the shipped ``configs/policy-lm.toml`` (docs/causal-lm.md).

An LM audit has no natural-example canary: its Bonferroni family is its LM attacks + its secret canaries, and
the gate reads it so (:func:`reports.recompute.is_lm_audit`), recomputing ε and every one-run bound as for a
classifier. Pass, fail (a leaking attack, an edited ε, an edited canary bound) and inconclusive (too few
canaries) on synthetic reports built like ``dpaudit audit --task causal-lm`` writes them."""

from __future__ import annotations

from pathlib import Path

from dpaudit.reports.recompute import LM_ATTACK_NAMES, gated_bounds, is_lm_audit
from tests.adversarial._gate_cli import gate as _gate, no_github, row as _row  # noqa: F401 (autouse fixture)
from tests.reports import sample
from tests.reports.lm_sample import make_lm_report

ROOT = Path(__file__).resolve().parents[2]
POLICY_LM = (ROOT / "configs" / "policy-lm.toml").read_text(encoding="utf-8")
POLICY = (ROOT / "configs" / "policy.toml").read_text(encoding="utf-8")


def test_the_gate_knows_every_lm_attack():
    from dpaudit.attacks.lm_signals import LM_ATTACKS

    assert LM_ATTACK_NAMES == set(LM_ATTACKS.names())


def test_a_sound_lm_audit_passes_the_lm_policy(tmp_path, capsys):
    code, out, _ = _gate(tmp_path, capsys, make_lm_report().to_dict(), POLICY_LM)
    assert code == 0, out
    assert "recomputed from σ, q, steps, δ" in _row(out, "max_epsilon")
    assert "PASS" in _row(out, "max_epsilon_lb") and "PASS" in _row(out, "min_canary_cap")
    assert "PASS" in _row(out, "required_attacks[min_k_pp]") and "policy release-lm: PASSED" in out


def test_the_classifier_policy_fails_an_lm_audit_on_its_attacks(tmp_path, capsys):
    code, out, _ = _gate(tmp_path, capsys, make_lm_report().to_dict(), POLICY)
    assert code == 1 and "FAIL" in _row(out, "required_attacks[lira_online]")


def test_a_leaking_lm_attack_fails(tmp_path, capsys):
    code, out, _ = _gate(tmp_path, capsys, make_lm_report(shift=1.0).to_dict(), POLICY_LM)
    assert code == 1 and "FAIL" in _row(out, "max_auc") and "FAIL" in _row(out, "max_tpr_at_fpr[0.01]")


def test_an_edited_epsilon_fails(tmp_path, capsys):
    data = make_lm_report().to_dict()
    data["privacy"]["epsilon"] = 0.5  # its σ, q, steps give 3.39
    code, out, _ = _gate(tmp_path, capsys, data, POLICY_LM)
    assert code == 1 and "report edited or produced by another accountant" in _row(out, "max_epsilon")


def test_an_edited_secret_canary_bound_is_recomputed_and_fails(tmp_path, capsys):
    data = make_lm_report(canaries=1000, canary_shift=3.0).to_dict()
    stated = data["canaries"]["epsilon_lb"]["epsilon_lb"]
    assert stated > 1.0  # the model memorised its secrets
    data["canaries"]["epsilon_lb"]["epsilon_lb"] = 0.0  # edited; the counts still say otherwise
    code, out, _ = _gate(tmp_path, capsys, data, POLICY_LM.replace("max_epsilon_lb = 2.0", "max_epsilon_lb = 0.5"))
    assert code == 1 and "FAIL" in _row(out, "max_epsilon_lb") and f"canaries={stated:.4g}" in out


def test_the_gate_reads_the_lm_family_the_audit_fixed():
    """Gated at 0.05 / (attacks + canaries), each recomputed bound is the one the audit stated."""
    report = make_lm_report(canaries=1000, canary_shift=3.0)
    gated = {label: value for label, _, _, value, _ in gated_bounds(report, 0.05, 2.0)}
    stated = {a.name: a.epsilon_lb["epsilon_lb"] for a in report.attacks}
    assert gated == {**stated, "canaries": report.canaries["epsilon_lb"]["epsilon_lb"]} and gated["canaries"] > 1.0


def test_too_few_secret_canaries_is_inconclusive(tmp_path, capsys):
    code, out, _ = _gate(tmp_path, capsys, make_lm_report(canaries=100).to_dict(), POLICY_LM)
    assert code == 3 and "INCONCLUSIVE" in _row(out, "min_canary_cap") and "use more canaries" in out
    code, out, _ = _gate(tmp_path, capsys, make_lm_report(canaries=None).to_dict(), POLICY_LM)
    assert code == 3 and "no canaries in the audit" in _row(out, "min_canary_cap")


def test_a_classifier_report_dressed_as_an_lm_audit_still_needs_its_canary(tmp_path, capsys):
    """Deleting a classifier report's natural-example canary and pasting in a causal_lm section is not an LM
    audit: the missing canary stays inconclusive (else deleting a failing canary would pass)."""
    data = sample.make_report(canaries=False).to_dict()
    data["canary"] = None
    data["causal_lm"] = {"attacks": [a["name"] for a in data["attacks"]], "loss": "x", "exposure": None,
                         "generations": None}
    report = make_lm_report()
    assert is_lm_audit(report) and not is_lm_audit(sample.make_report())
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon_lb = 2.0\n")
    assert code == 3 and "canary (missing from the report)" in _row(out, "max_epsilon_lb")
