"""``dpaudit report`` and ``dpaudit env``."""

from __future__ import annotations

import json

import pytest

from dpaudit.reports.pdf import find_chromium
from dpaudit.rundir import RunDir
from tests.reports import sample
from dpaudit.cli.main import main as run_cli


@pytest.fixture
def run_dir(tmp_path):
    path = RunDir.claim(tmp_path / "run", command="audit").path  # a run directory dpaudit made
    (path / "audit.json").write_text(json.dumps(sample.make_report().to_dict(), allow_nan=False))
    return path


def test_report_writes_requested_formats(run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert run_cli(["report", str(run_dir), "--format", "md, MD", "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.md"]
    assert "wrote" in capsys.readouterr().out
    assert (out / "report.md").read_text().startswith("## Privacy audit")


@pytest.mark.skipif(find_chromium() is None, reason="the PDF needs chromium (apt-get install -y chromium)")
def test_report_defaults_to_all_formats_in_run_dir(run_dir):
    assert run_cli(["report", str(run_dir)]) == 0
    assert {"report.html", "report.md", "report.pdf"} <= {p.name for p in run_dir.iterdir()}
    assert (run_dir / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert (run_dir / "report.pdf").read_bytes().startswith(b"%PDF-")


def test_report_bad_format_is_usage_error(run_dir, capsys):
    with pytest.raises(SystemExit) as info:
        run_cli(["report", str(run_dir), "--format", "html,docx"])
    assert info.value.code == 2
    assert "--format must be a comma-separated subset of html,md,pdf" in capsys.readouterr().err


def test_report_missing_and_invalid(tmp_path, run_dir, capsys):
    assert run_cli(["report", str(tmp_path / "nope")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    (run_dir / "audit.json").write_text('{"schema_version": "1.0"')
    assert run_cli(["report", str(run_dir), "--format", "md"]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert not (run_dir / "report.md").exists()


def test_env_prints_block(capsys):
    assert run_cli(["env"]) == 0
    out = capsys.readouterr().out
    for key in ("- dpaudit:", "- Python:", "- torch:", "- transformers:", "- opacus:", "- numpy:",
                "- CUDA available:", "- CPU count:", "- torch threads:"):
        assert key in out
