"""The shipped release policy lives inside the package (``dpaudit/policies/default.toml``, package data), so
``--policy default`` and the web UI's gate form work from an installed wheel; the repository's
``configs/policy.toml`` (which the README shows and the CI templates copy) is the same bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpaudit.errors import ConfigError
from dpaudit.policies import SHIPPED, policy_file
from dpaudit.reports.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]


def test_configs_policy_is_a_copy_of_the_packaged_one():
    assert SHIPPED["default"] == ROOT / "dpaudit" / "policies" / "default.toml"
    assert (ROOT / "configs" / "policy.toml").read_bytes() == SHIPPED["default"].read_bytes()


def test_default_names_the_shipped_policy_and_other_names_stay_paths(tmp_path, monkeypatch):
    assert load_policy("default") == load_policy(ROOT / "configs" / "policy.toml")
    assert load_policy("default").name == "release"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "default").write_text('name = "mine"\nmax_auc = 0.9\n', encoding="utf-8")
    assert load_policy("./default").name == "mine"  # a file called default is ./default
    assert policy_file("other.toml") == Path("other.toml")
    with pytest.raises(ConfigError, match="policy file not found: nope.toml"):
        load_policy("nope.toml")


def test_the_gate_cli_takes_policy_default(tmp_path, capsys):
    from dpaudit.cli.main import main
    from dpaudit.report_io import dump_report
    from tests.reports.sample import make_report

    dump_report(make_report(), tmp_path / "audit.json")
    code = main(["gate", str(tmp_path / "audit.json"), "--policy", "default"])
    out = capsys.readouterr().out
    assert code in (0, 1, 3) and "release" in out, out
