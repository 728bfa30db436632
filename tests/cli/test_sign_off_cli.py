"""``dpaudit report --sign-off`` (the reviewer's record in audit.json) and ``gate --write-verdict``
re-rendering the reports beside audit.json (issue 24: report.html still said NO POLICY)."""

from __future__ import annotations

import json

import pytest

from dpaudit.cli.main import main as run_cli
from dpaudit.report_io import load_report, validate_report
from dpaudit.reports.pdf import find_chromium
from dpaudit.rundir import RunDir
from tests.reports import sample

EVIL = '<script>alert("x")</script>'


@pytest.fixture
def run_dir(tmp_path):
    path = RunDir.claim(tmp_path / "run", command="audit").path
    (path / "audit.json").write_text(json.dumps(sample.make_report().to_dict(), allow_nan=False))
    return path


def test_sign_off_is_recorded_and_rendered(run_dir, capsys):
    argv = ["report", str(run_dir), "--format", "html,md", "--sign-off", f"reviewer=Ada {EVIL}",
            "role=data  protection officer", "decision=approve-with-conditions", "conditions=internal use only"]
    assert run_cli(argv) == 0
    sign_off = load_report(run_dir / "audit.json").sign_off
    assert sign_off.reviewer == f"Ada {EVIL}" and sign_off.role == "data protection officer"
    assert sign_off.decision == "approve_with_conditions" and len(sign_off.date) == 10  # dated today
    html = (run_dir / "report.html").read_text()
    block = html[html.index('id="sign-off"'):]
    assert "Ada &lt;script&gt;" in block and "<script" not in html
    assert "data protection officer" in block and "internal use only" in block
    assert block.count("✕") == 1 and "sign-off-scope" in block and "bert-tiny" in block
    md = (run_dir / "report.md").read_text()
    assert "### Sign-off" in md and "| decision | approve with conditions |" in md and "\\<script>" in md
    # A later call adds to the record; fields not given are kept.
    assert run_cli(["report", str(run_dir), "--format", "md", "--sign-off", "date=2026-01-31"]) == 0
    again = load_report(run_dir / "audit.json").sign_off
    assert again.date == "2026-01-31" and again.reviewer == f"Ada {EVIL}"


def test_unsigned_report_leaves_fields_blank(run_dir):
    assert run_cli(["report", str(run_dir), "--format", "html"]) == 0
    html = (run_dir / "report.html").read_text()
    block = html[html.index('id="sign-off"'):]
    assert "<th>reviewer</th><td></td>" in block and "✕" not in block and "signature" in block
    assert json.loads((run_dir / "audit.json").read_text()).get("sign_off") is None  # nothing written


@pytest.mark.parametrize(("pair", "message"), [
    ("decision=maybe", "decision must be one of approve, reject, approve-with-conditions"),
    ("signature=x", "--sign-off takes KEY=VALUE with KEY one of"),
    ("reviewer", "--sign-off takes KEY=VALUE"),
    ("reviewer=a\u202eb", "control, bidi or line-break character"),
    ("reviewer=a\nb", "control, bidi or line-break character"),
    ("reviewer=" + "x" * 201, "at most 200"),
    ("date=31/01/2026", "date must be YYYY-MM-DD"),
    ("reviewer=  ", "is empty"),
])
def test_bad_sign_off_is_one_line_and_writes_nothing(run_dir, capsys, pair, message):
    before = (run_dir / "audit.json").read_bytes()
    assert run_cli(["report", str(run_dir), "--format", "md", "--sign-off", pair]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
    assert (run_dir / "audit.json").read_bytes() == before and not (run_dir / "report.md").exists()


def test_conditions_need_that_decision(run_dir, capsys):
    assert run_cli(["report", str(run_dir), "--format", "md", "--sign-off", "decision=approve",
                    "conditions=x"]) == 2
    assert "conditions go with decision=approve-with-conditions" in capsys.readouterr().err


def test_tampered_sign_off_in_audit_json_is_refused(run_dir, capsys):
    data = json.loads((run_dir / "audit.json").read_text())
    data["sign_off"] = {"reviewer": "x\x1b[2Jy", "decision": "approve"}
    (run_dir / "audit.json").write_text(json.dumps(data))
    assert run_cli(["report", str(run_dir), "--format", "md"]) == 2
    assert "invalid at sign_off/reviewer" in capsys.readouterr().err
    data["sign_off"] = {"decision": "approved"}
    with pytest.raises(Exception, match="sign_off/decision"):
        validate_report(data)


def test_pdf_without_chromium_is_exit_2_naming_the_package(run_dir, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DPAUDIT_CHROMIUM", str(tmp_path / "missing"))
    assert run_cli(["report", str(run_dir), "--formats", "pdf"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Debian package `chromium`" in err
    assert not (run_dir / "report.pdf").exists()


def _policy(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('name = "release"\nmax_auc = 0.60\n')
    return path


def test_write_verdict_rerenders_the_reports_beside_audit_json(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    assert run_cli(["report", str(run_dir), "--format", "html,md"]) == 0
    assert "NO POLICY" in (run_dir / "report.html").read_text()
    capsys.readouterr()
    assert run_cli(["gate", str(run_dir), "--policy", str(_policy(tmp_path)), "--write-verdict"]) == 0
    assert "re-rendered report.html, report.md with the verdict" in capsys.readouterr().out
    html = (run_dir / "report.html").read_text()
    assert "NO POLICY" not in html and "PASSED against policy “release”" in html
    assert "✅ PASSED" in (run_dir / "report.md").read_text()
    assert not (run_dir / "report.pdf").exists()  # only the reports that were there


def test_write_verdict_without_chromium_warns_and_keeps_the_exit_code(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    assert run_cli(["report", str(run_dir), "--format", "md"]) == 0
    (run_dir / "report.pdf").write_bytes(b"%PDF-1.4 stale")
    monkeypatch.setenv("DPAUDIT_CHROMIUM", str(tmp_path / "missing"))
    assert run_cli(["gate", str(run_dir), "--policy", str(_policy(tmp_path)), "--write-verdict"]) == 0
    err = capsys.readouterr().err
    assert "warning: reports beside" in err and "chromium" in err
    assert "✅ PASSED" in (run_dir / "report.md").read_text()
    assert load_report(run_dir / "audit.json").verdict.passed is True


@pytest.mark.skipif(find_chromium() is None, reason="needs chromium (apt-get install -y chromium)")
def test_write_verdict_rerenders_the_pdf(run_dir, tmp_path, monkeypatch):
    import subprocess
    import shutil

    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    (run_dir / "report.pdf").write_bytes(b"%PDF-1.4 stale")
    assert run_cli(["gate", str(run_dir), "--policy", str(_policy(tmp_path)), "--write-verdict"]) == 0
    data = (run_dir / "report.pdf").read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 10_000
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(run_dir / "report.pdf"), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert "PASSED against policy" in text and "NO POLICY" not in text
