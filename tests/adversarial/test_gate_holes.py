"""Issue 8 finding 7 and the noise/claim provenance: hand-edited reports that the gate used to pass.

Each report here is edited the way a third party could edit an ``audit.json``; before the fix every
one of them exited 0 (or, for estimates, was gated as a bound).
"""

from __future__ import annotations

import math

import pytest

from dpaudit.reports import summary as S
from dpaudit.reports.html import render_html
from dpaudit.reports.markdown import render_markdown
from dpaudit.report_schema import AuditReport
from tests.adversarial._gate_cli import gate as _gate, no_github, row as _row  # noqa: F401 (autouse fixture)
from tests.reports import sample


def _one_error_line(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# --------------------------------------------------------------------------- issue 8, finding 7


def test_missing_canary_is_inconclusive_not_a_pass(tmp_path, capsys):
    data = sample.make_report().to_dict()
    data["canary"] = None
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon_lb = 2.0\n")
    assert code == 3
    assert "INCONCLUSIVE" in _row(out, "max_epsilon_lb") and "canary (missing" in out


def test_non_ok_privacy_status_with_numeric_epsilon_is_inconclusive(tmp_path, capsys):
    data = sample.make_report().to_dict()
    assert isinstance(data["privacy"]["epsilon"], float)
    data["privacy"]["status"] = "inconclusive"
    data["privacy"]["reason"] = "accountant saturated"
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon = 8.0\n")
    assert code == 3
    assert "INCONCLUSIVE" in _row(out, "max_epsilon") and "privacy status is inconclusive" in out


def test_status_contradicting_non_private_is_an_input_error(tmp_path, capsys):
    data = sample.make_report().to_dict()
    data["privacy"]["status"] = "non_private"  # but non_private is false and ε numeric
    code, _, err = _gate(tmp_path, capsys, data, "max_epsilon = 8.0\n")
    assert code == 2
    _one_error_line(err, "privacy/status")


def test_resolvable_flag_is_recomputed_from_nonmembers(tmp_path, capsys):
    data = sample.make_report().to_dict()
    attack = data["attacks"][0]
    attack["n_nonmembers"] = 3  # cannot measure FPR 0.001 (needs 1000), whatever the flag says
    entry = next(t for t in attack["tpr_at_fpr"] if t["fpr"] == 0.001)
    assert entry["resolvable"] is True and entry["tpr"] is not None
    code, out, _ = _gate(tmp_path, capsys, data, "[max_tpr_at_fpr]\nfpr = 0.001\nmax_tpr = 0.5\n")
    assert code == 3
    assert "unresolvable with 3 non-members (the report's resolvable flag says otherwise)" in out


def test_recomputed_resolvability_matches_the_writer_formula():
    from dpaudit.attacks.membership import required_nonmembers  # the writer's formula (tests may import it)

    attack = sample.make_report().attacks[0]
    for fpr in (0.001, 0.01, 0.1, 0.3, 1 / 3, 0.5, 1.0):
        need = required_nonmembers(fpr)
        for n in (need - 1, need):
            changed = type(attack).from_dict({**attack.to_dict(), "n_nonmembers": n})
            assert changed.resolves(fpr) is (n >= need), (fpr, n)


@pytest.mark.parametrize("policy", ["", "name = \"release\"\n", "allow_non_private = true\n",
                                    "name = \"r\"\nallow_non_private = false\nallow_seeded_noise = true\n"])
def test_policy_that_checks_nothing_is_a_usage_error(tmp_path, capsys, policy):
    code, out, err = _gate(tmp_path, capsys, sample.make_report().to_dict(), policy)
    assert code == 2 and out == ""
    _one_error_line(err, "the policy checks nothing")


def test_estimates_never_enter_the_lower_bound_check(tmp_path, capsys):
    data = sample.make_report().to_dict()
    data["attacks"][2]["epsilon_lb"].update(epsilon_lb=5.0, kind="estimate")  # a GDP fit, say
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon_lb = 2.0\n")
    assert code == 0, out
    report = AuditReport.from_dict(data)
    assert "5.00" not in S.summarize(report).empirical  # the headline never quotes an estimate
    assert any("≈ 5.00 (estimate, not a bound)" in row for row in S.attack_rows(report)[2])
    data["attacks"][2]["epsilon_lb"]["kind"] = "bound"
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon_lb = 2.0\n")
    assert code == 1 and "lira_online=5" in _row(out, "max_epsilon_lb")


def test_canary_that_is_only_an_estimate_is_no_canary_bound(tmp_path, capsys):
    data = sample.make_report().to_dict()
    data["canary"]["kind"] = "estimate"
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon_lb = 2.0\n")
    assert code == 3 and "canary (only an estimate" in out


def test_unknown_bound_kind_is_an_input_error(tmp_path, capsys):
    data = sample.make_report().to_dict()
    data["attacks"][0]["epsilon_lb"]["kind"] = "guess"
    code, _, err = _gate(tmp_path, capsys, data, "max_epsilon_lb = 2.0\n")
    assert code == 2
    _one_error_line(err, "attacks/0/epsilon_lb/kind")


# --------------------------------------------------------------------------- noise and claim provenance


def test_seeded_noise_fails_unless_the_policy_allows_it(tmp_path, capsys):
    data = sample.make_report(noise="seeded").to_dict()
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon = 8.0\n")
    assert code == 1 and "FAIL" in _row(out, "secure_noise") and "not a private release" in out
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon = 8.0\nallow_seeded_noise = true\n")
    assert code == 0 and "PASS" in _row(out, "secure_noise")


def test_unrecorded_noise_on_a_private_report_is_inconclusive(tmp_path, capsys):
    data = sample.make_report().to_dict()
    del data["privacy"]["noise"]  # an older report, or one edited to hide the seed
    code, out, _ = _gate(tmp_path, capsys, data, "max_epsilon = 8.0\n")
    assert code == 3 and "INCONCLUSIVE" in _row(out, "secure_noise")


def test_non_private_report_has_no_noise_check(tmp_path, capsys):
    data = sample.make_report(non_private=True).to_dict()
    assert data["privacy"]["noise"] is None
    code, out, _ = _gate(tmp_path, capsys, data, "allow_non_private = true\nmax_auc = 0.9\n")
    assert code == 0 and "secure_noise" not in out


def test_bad_noise_value_is_an_input_error(tmp_path, capsys):
    data = sample.make_report().to_dict()
    data["privacy"]["noise"] = "pseudo"
    code, _, err = _gate(tmp_path, capsys, data, "max_epsilon = 8.0\n")
    assert code == 2
    _one_error_line(err, "privacy/noise")


def test_seeded_noise_is_on_the_first_screen():
    report = sample.make_report(noise="seeded")
    html = render_html(report, dpi=20)
    summary = html[html.index('<section class="summary"'):html.index("</section>")]
    assert "Seeded noise: not a private release" in summary
    md = render_markdown(report)
    assert "Seeded noise: not a private release" in md[:md.index("### Attacks")]
    assert "Seeded noise" not in render_markdown(sample.make_report())


def test_checkpoint_claim_is_labelled_wherever_epsilon_is_stated(tmp_path, capsys):
    report = sample.make_report(claim_source="checkpoint")
    label = "asserted by the checkpoint, not verified"
    assert label in S.summarize(report).claim
    assert label in dict(S.privacy_rows(report))["ε (nats, upper bound)"]
    html = render_html(report, dpi=20)
    assert label in html[html.index('<section class="summary"'):html.index("</section>")]
    md = render_markdown(report)
    assert label in md[:md.index("### Attacks")]
    code, out, _ = _gate(tmp_path, capsys, report.to_dict(), "max_epsilon = 8.0\n")
    assert code == 0 and label in _row(out, "max_epsilon")
    own = sample.make_report()
    assert "not verified" not in S.summarize(own).claim
    assert math.isclose(own.privacy.epsilon, report.privacy.epsilon)
