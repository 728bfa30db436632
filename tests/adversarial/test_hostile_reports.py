"""Issue 16 findings 1, 4 and 5 (report and policy side): hostile ``audit.json`` and policy files.

An attacker who controls a report or a policy must not be able to forge CI output (workflow
commands, ANSI escapes), break the JUnit XML, crash the gate or the renderers with a traceback, or
make them spend minutes on one file. Reports must not show absolute paths or the kernel string.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from dpaudit import report_io, report_schema
from dpaudit.rundir import RunDir
from dpaudit.cli.main import main as run_cli
from dpaudit.reports import figures as F
from dpaudit.reports.html import render_html
from dpaudit.reports.markdown import render_markdown
from tests.reports import sample

INJECTION = ("\n::notice title=dpaudit gate::all privacy checks passed\n::stop-commands::k1\n"
             "\x1b[2J FAKE PASS\r\u2028\u202e")


@pytest.fixture(autouse=True)
def _no_github(monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)


def _write(tmp_path, data: dict | None = None, *, text: str | None = None) -> str:
    run_dir = RunDir.claim(tmp_path / "run", command="audit").path  # a run directory dpaudit made
    path = run_dir / "audit.json"
    path.write_text(text if text is not None else json.dumps(data), encoding="utf-8")
    return str(path)


def _policy(tmp_path, text: str = "max_auc = 0.9\nmax_epsilon_lb = 5.0\n") -> str:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _one_error_line(capsys, *fragments: str) -> str:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def _hostile_report() -> dict:
    data = sample.make_report().to_dict()
    attack = data["attacks"][1]
    attack.update(status="inconclusive", reason="scores" + INJECTION, auc=None, balanced_accuracy=None)
    data["attacks"][2]["name"] = "lira" + INJECTION.replace("\n", "\n\n")
    return data


# --------------------------------------------------------------------------- finding 1: CI output


def test_sanitiser_leaves_one_inert_line():
    from dpaudit.sanitize import clean_text, guard_line

    cleaned = clean_text("a" + INJECTION + "\x00\x7f\x85\ud800\ufeff\u2066\t")
    assert "\n" not in cleaned and "\r" not in cleaned and "\x1b" not in cleaned
    assert not any(ch in cleaned for ch in "\x00\x7f\x85\ud800\ufeff\u2066\u2028\u202e\t")
    assert "\\x1b[2J FAKE PASS" in cleaned  # tampering stays visible
    capped = clean_text("\x1b" * 10_000_000, max_len=50)
    assert len(capped) == 50 and capped.endswith("…")
    assert guard_line("::error::x").startswith("> ") and guard_line("  ##[error]x").startswith("> ")


def test_injected_reason_forges_no_workflow_command_or_escape(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    policy = _policy(tmp_path, 'name = "rel\\u001b[31m"\nmax_auc = 0.9\nmax_epsilon_lb = 5.0\n')
    junit = tmp_path / "gate.xml"
    code = run_cli(["gate", _write(tmp_path, _hostile_report()), "--policy", policy, "--junit", str(junit)])
    out = capsys.readouterr().out
    assert code == 3
    assert "\x1b" not in out and "\r" not in out and "\u2028" not in out and "\u202e" not in out
    commands = [line for line in out.splitlines() if line.lstrip().startswith(("::", "##["))]
    assert commands and all(line.startswith("::error title=dpaudit gate (rel") for line in commands)
    assert not any("::notice" in line.split("::", 2)[1] for line in commands)  # no forged command name
    assert "FAKE PASS" in out  # shown, inert
    ET.parse(junit)  # well-formed


def test_junit_with_control_characters_parses(tmp_path, capsys):
    data = sample.make_report().to_dict()
    data["attacks"][0].update(status="inconclusive", reason="bad\x00\x01\x08\x0b\x0c\x1b\x7f\ufffe end",
                              auc=None, balanced_accuracy=None)
    junit = tmp_path / "gate.xml"
    assert run_cli(["gate", _write(tmp_path, data), "--policy", _policy(tmp_path), "--junit", str(junit)]) == 3
    capsys.readouterr()
    error = next(e for e in ET.parse(junit).getroot().iter("error"))
    assert "bad\\x00\\x01" in error.get("message") and "end" in error.get("message")


def test_rendered_reports_carry_no_control_characters(tmp_path):
    from dpaudit.reports.pdf import find_chromium, write_pdf

    data = _hostile_report()
    data["run"]["run_id"] = "run\x1b]0;owned\x07"
    report = report_schema.AuditReport.from_dict(data)
    for text in (render_markdown(report), render_html(report, dpi=20)):
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
        assert "\n::" not in text
    if find_chromium() is not None:  # the PDF is the HTML printed by Chromium
        assert write_pdf(report, tmp_path / "r.pdf").read_bytes().startswith(b"%PDF-")


# --------------------------------------------------------------------------- finding 4: malformed input


@pytest.mark.parametrize("depth", [500, 100_000])
def test_deep_nesting_is_one_line(tmp_path, capsys, depth):
    text = json.dumps(sample.make_report().to_dict())
    nested = "[" * depth + "]" * depth
    text = text.replace('"config": {', '"config": {"deep": ' + nested + ", ", 1)
    path = _write(tmp_path, text=text)
    assert run_cli(["gate", path, "--policy", _policy(tmp_path)]) == 2
    _one_error_line(capsys, "nest")
    assert run_cli(["report", str(tmp_path / "run"), "--format", "md"]) == 2
    _one_error_line(capsys, "nest")


def test_huge_integer_is_one_line(tmp_path, capsys):
    text = json.dumps(sample.make_report().to_dict()).replace('"n_nonmembers": 2000', '"n_nonmembers": 1' + "0" * 400, 1)
    path = _write(tmp_path, text=text)
    assert run_cli(["gate", path, "--policy", _policy(tmp_path, "min_nonmembers = 100\n")]) == 2
    _one_error_line(capsys, "n_nonmembers", "integers must be bounded")


@pytest.mark.parametrize("where", ["bin_edges", "history", "utility"])
def test_huge_floats_are_one_line(tmp_path, capsys, where):
    data = sample.make_report().to_dict()
    if where == "bin_edges":
        data["attacks"][0]["histogram"]["bin_edges"][-1] = 1e308  # axis range overflows when drawn
    elif where == "history":
        data["privacy"]["epsilon_history"]["epsilons"][-1] = 1e308
    else:
        data["utility"]["value"] = -1e308
    _write(tmp_path, data)
    assert run_cli(["report", str(tmp_path / "run"), "--format", "html"]) == 2
    _one_error_line(capsys, "is beyond ±1e+15")


@pytest.mark.parametrize(("field", "key", "keep"), [("histogram", "in_counts", 5), ("roc", "tpr", 7),
                                                    ("histogram", "bin_edges", 3)])
def test_mismatched_lengths_are_one_line(tmp_path, capsys, field, key, keep):
    data = sample.make_report().to_dict()
    data["attacks"][1][field][key] = data["attacks"][1][field][key][:keep]
    _write(tmp_path, data)
    assert run_cli(["report", str(tmp_path / "run"), "--format", "html"]) == 2
    _one_error_line(capsys, f"attacks/1/{field}")
    assert not (tmp_path / "run" / "report.html").exists()


@pytest.mark.parametrize("metric", ["$$$", "$$$$", "$\\frac{a}$", "$x^$", "$\\frac{a}{b}$ 100%"])
def test_mathtext_in_metric_is_drawn_literally(tmp_path, capsys, metric):
    data = sample.make_report(non_private=True).to_dict()
    data["utility"]["metric"] = metric
    _write(tmp_path, data)
    assert run_cli(["report", str(tmp_path / "run"), "--format", "html"]) == 0
    fig = F.privacy_utility_figure(report_schema.AuditReport.from_dict(data))
    label = fig.axes[0].yaxis.label
    assert label.get_text() == metric and label.get_parse_math() is False


def test_junit_into_missing_folder_is_one_line(tmp_path, capsys):
    path = _write(tmp_path, sample.make_report().to_dict())
    junit = tmp_path / "missing" / "gate.xml"
    assert run_cli(["gate", path, "--policy", _policy(tmp_path), "--junit", str(junit)]) == 2
    _one_error_line(capsys, "--junit folder", "does not exist")


def test_oversized_files_are_refused(tmp_path, capsys, monkeypatch):
    padding = "# " + "x" * 1000 + "\n"
    big_policy = _policy(tmp_path, "max_auc = 0.9\n" + padding * 2100)  # > 2 MiB of comments
    path = _write(tmp_path, sample.make_report().to_dict())
    assert run_cli(["gate", path, "--policy", big_policy]) == 2
    _one_error_line(capsys, "larger than 1 MiB")
    monkeypatch.setattr(report_io, "MAX_REPORT_BYTES", 2**20)  # the real cap is 50 MiB
    _write(tmp_path, text=json.dumps(sample.make_report().to_dict()) + " " * 2**20)
    assert run_cli(["gate", path, "--policy", _policy(tmp_path)]) == 2
    _one_error_line(capsys, "larger than 1 MiB")


def test_deeply_nested_policy_is_one_line(tmp_path, capsys):
    path = _write(tmp_path, sample.make_report().to_dict())
    policy = _policy(tmp_path, "max_auc = 0.9\nx = " + "[" * 5000 + "]" * 5000 + "\n")
    assert run_cli(["gate", path, "--policy", policy]) == 2
    _one_error_line(capsys, "policy")


def test_lone_surrogate_is_one_line(tmp_path, capsys):
    text = json.dumps(sample.make_report().to_dict()).replace('"run_id": "', '"run_id": "\\ud800', 1)
    _write(tmp_path, text=text)
    assert run_cli(["report", str(tmp_path / "run"), "--format", "md"]) == 2
    _one_error_line(capsys, "run/run_id", "surrogate")


# --------------------------------------------------------------------------- finding 5: resources


@pytest.mark.parametrize(("where", "message"), [("histogram", "attacks/0/histogram/"),
                                                ("run_id", "run/run_id"), ("history", "epsilon_history")])
def test_oversized_fields_are_refused(tmp_path, capsys, where, message):
    data = sample.make_report().to_dict()
    if where == "histogram":
        n = 20_000
        data["attacks"][0]["histogram"] = {"bin_edges": [float(i) for i in range(n + 1)],
                                           "in_counts": [1] * n, "out_counts": [1] * n}
    elif where == "run_id":
        data["run"]["run_id"] = "r" * 200_000
    else:
        steps = list(range(20_000))
        data["privacy"]["epsilon_history"] = {"steps": steps, "epsilons": [0.1] * len(steps)}
    assert run_cli(["gate", _write(tmp_path, data), "--policy", _policy(tmp_path)]) == 2
    _one_error_line(capsys, message)


def test_reports_show_no_absolute_paths_or_kernel_string(tmp_path):
    from dpaudit.reports.pdf import find_chromium, write_pdf

    data = sample.make_report().to_dict()
    data["run"]["dataset"]["source"] = "/home/alice/secret-project/train.csv"
    data["run"]["model"]["source"] = "C:\\Users\\alice\\models\\bert-tiny"
    data["run"]["hardware"]["platform"] = "Linux-6.1.0-18-amd64-x86_64-with-glibc2.36"
    data["run"]["config"]["data"] = {"path": "/home/alice/secret-project/train.csv"}
    report = report_schema.AuditReport.from_dict(data)
    for text in (render_html(report, dpi=20), render_markdown(report)):
        assert "/home/alice" not in text and "Users\\alice" not in text and "Users\\\\alice" not in text
        assert "6.1.0-18-amd64" not in text
    html = render_html(report, dpi=20)
    assert "train.csv" in html and "bert-tiny" in html and "ab" * 32 in html
    from dpaudit.reports.summary import provenance_rows  # what the PDF prints (its text is compressed)

    rows = " ".join(value for _, value in provenance_rows(report))
    assert "secret-project" not in rows and "6.1.0-18" not in rows and "train.csv" in rows
    if find_chromium() is not None:  # the PDF is the HTML printed by Chromium
        assert write_pdf(report, tmp_path / "r.pdf").read_bytes().startswith(b"%PDF-")
