"""examples/ci/: the GitHub Actions and GitLab CI files for auditing your own model. Every `dpaudit` flag
they use exists; torch is pinned before dpaudit is installed; audit.json is never uploaded; and their
commands, run locally in order (install and fetch steps skipped), audit a tiny model and gate it."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML not installed: `pip install '.[test]'`")

ROOT = Path(__file__).resolve().parents[1]
GITHUB = ROOT / "examples" / "ci" / "github-actions.yml"
GITLAB = ROOT / "examples" / "ci" / "gitlab-ci.yml"
SKIPPED = ("install", "fetch")  # need the network; the checkout stands in for them here


def github_job() -> tuple[dict, list[dict]]:
    workflow = yaml.safe_load(GITHUB.read_text(encoding="utf-8"))
    (job,) = workflow["jobs"].values()
    return job, job["steps"]


def github_commands() -> list[tuple[str, str]]:
    """``(step id or name, script)`` of every ``run:`` step, in order."""
    _, steps = github_job()
    return [(s.get("id", s.get("name", "")), s["run"]) for s in steps if "run" in s]


def gitlab_job() -> dict:
    (job,) = (v for k, v in yaml.safe_load(GITLAB.read_text(encoding="utf-8")).items() if not k.startswith("."))
    return job


def gitlab_commands() -> list[tuple[str, str]]:
    job = gitlab_job()
    return [("before_script", c) for c in job.get("before_script", [])] + [("script", c) for c in job["script"]]


def dpaudit_invocations(script: str) -> list[tuple[str, set[str]]]:
    """``(subcommand, flags)`` of each ``dpaudit SUB ...`` in a shell script (continuations joined; flags
    inside ``${VAR:+--flag ...}`` expansions count)."""
    out = []
    for segment in re.split(r"&&|\|\||[;|\n]", script.replace("\\\n", " ")):
        words = segment.split()
        if len(words) >= 2 and words[0] == "dpaudit":
            out.append((words[1], set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", segment))))
    return out


def _subparsers() -> dict:
    import argparse

    from dpaudit.cli.main import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_the_flag_reader_sees_flags_in_continuations_and_expansions():
    script = 'dpaudit audit --data "$D" \\\n  ${E:+--claim-epsilon "$E"} --bogus-flag && dpaudit gate x --junit g.xml'
    assert dpaudit_invocations(script) == [("audit", {"--data", "--claim-epsilon", "--bogus-flag"}),
                                           ("gate", {"--junit"})]
    assert "--bogus-flag" not in _subparsers()["audit"]._option_string_actions


@pytest.mark.parametrize("commands", [github_commands, gitlab_commands], ids=["github", "gitlab"])
def test_every_dpaudit_flag_used_exists(commands):
    parsers = _subparsers()
    used = [inv for _, script in commands() for inv in dpaudit_invocations(script)]
    assert {sub for sub, _ in used} == {"fetch-assets", "audit", "gate"}
    for sub, flags in used:
        unknown = flags - set(parsers[sub]._option_string_actions)
        assert not unknown, f"`dpaudit {sub}` has no {sorted(unknown)}"


@pytest.mark.parametrize("commands", [github_commands, gitlab_commands], ids=["github", "gitlab"])
def test_torch_is_pinned_before_dpaudit_and_the_assets_are_fetched(commands):
    text = "\n".join(script for _, script in commands())
    torch_at, dpaudit_at = text.index("pip install torch==2.13.0"), text.index('pip install "$DPAUDIT_SPEC"')
    assert torch_at < dpaudit_at < text.index("dpaudit fetch-assets") < text.index("dpaudit audit")
    assert "--junit gate.xml" in text and "--target-members" in text


def test_the_junit_file_reaches_the_test_report_and_audit_json_is_never_uploaded():
    _, steps = github_job()
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert uses["dorny/test-reporter"]["with"]["path"] == "gate.xml"
    uploaded = uses["actions/upload-artifact"]["with"]["path"]
    assert "gate.xml" in uploaded and "report.html" in uploaded and "audit.json" not in uploaded
    assert all(s.get("if") == "always()" for s in steps[steps.index(uses["dorny/test-reporter"]) - 1:])
    artifacts = gitlab_job()["artifacts"]
    assert artifacts["reports"]["junit"] == "gate.xml" and artifacts["when"] == "always"
    assert "gate.xml" in artifacts["paths"] and not any("audit.json" in p for p in artifacts["paths"])


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A tiny HF classifier trained on half of a 120-row CSV (tests/cli/_targets.py), and a `dpaudit` on
    PATH that runs this checkout."""
    from tests.cli._targets import make_world

    root = tmp_path_factory.mktemp("ci")
    made = make_world(root)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "dpaudit"
    exe.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m dpaudit "$@"\n', encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return {**made, "bin": bin_dir}


def _run_in_order(commands: list[tuple[str, str]], env: dict, cwd: Path) -> dict[str, int]:
    codes = {}
    for name, script in commands:
        if name in SKIPPED or (name == "before_script" and ("pip install" in script or "fetch-assets" in script)):
            continue
        done = subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=900)
        codes[name if name != "script" else script.split()[1]] = done.returncode
        assert done.returncode in (0, 1, 3), (name, done.stderr[-3000:])  # a gate may fail or be inconclusive
    return codes


@pytest.mark.slow  # about 60 s each on 2 shared cores; the checks above are the fast ones
@pytest.mark.parametrize("which", ["github", "gitlab"])
def test_the_commands_audit_and_gate_a_tiny_model(world, tmp_path, which):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({k: str(v) for k, v in (gitlab_job()["variables"] if which == "gitlab"
                                       else github_job()[0]["env"]).items()})
    env.update(PATH=f"{world['bin']}{os.pathsep}{env['PATH']}", OMP_NUM_THREADS="1",
               MODEL_DIR=str(world["hf"]), BACKBONE=str(world["backbone"]), DATA=str(world["csv"]),
               MEMBERS=str(world["members"]), POLICY=str(ROOT / "configs" / "policy.toml"),
               AUDIT_FLAGS="--shadows 4 --epochs 1 --batch-size 16 --set data.max_length=16 --set audit.fprs=[0.1]",
               GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"))
    if which == "github":  # the claim's ${VAR:+...} expansions, both ways
        env.update(CLAIM_EPSILON="8", CLAIM_DELTA="1e-3")
    codes = _run_in_order(github_commands() if which == "github" else gitlab_commands(), env, tmp_path)
    assert codes["audit"] == 0 and codes["gate"] in (0, 1, 3), codes
    run_dir = tmp_path / "runs" / "ci"
    assert (run_dir / "report.html").is_file() and (run_dir / "report.pdf").is_file()
    root = ET.parse(tmp_path / "gate.xml").getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    cases = list(suite.iter("testcase"))
    assert cases and len(cases) == int(suite.get("tests"))  # one test case per policy check
    claim = json.loads((run_dir / "audit.json").read_text(encoding="utf-8"))["privacy"]
    if which == "github":
        assert claim["claim_source"] == "user" and claim["epsilon"] == 8.0
        summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
        outcome = {0: "PASSED", 1: "FAILED", 3: "INCONCLUSIVE"}[codes["gate"]]
        assert summary.startswith("## dpaudit gate") and f"policy release: {outcome}" in summary
    else:
        assert claim["claim_source"] == "none"
