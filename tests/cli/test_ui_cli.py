"""``dpaudit ui``'s command line, without starting a server: the install hint without the ui extra, the flags'
checks, and which binds count as loopback."""

from __future__ import annotations

import sys

import pytest

from dpaudit.cli.main import build_parser, main
from tests.cli._helpers import assert_one_error_line


def test_without_the_ui_extra_it_prints_the_install_line_and_exits_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastapi", None)  # import fastapi → ImportError
    assert main(["ui", "--port", "0"]) == 2
    assert_one_error_line(capsys.readouterr().err, "pip install 'dpaudit[ui]'")


@pytest.mark.parametrize("flags, fragment", [
    (["--token", "short"], "--token must have at least 16 characters"),
    (["--max-upload-mb", "0"], "--max-upload-mb must be in"),
    (["--allow-root", "/no/such/folder"], "--allow-root /no/such/folder is not a folder"),
    (["--policy", "/no/such.toml"], "--policy /no/such.toml is not a file"),
])
def test_bad_flags_are_one_line(tmp_path, flags, fragment):
    pytest.importorskip("fastapi", reason="the ui extra is not installed", exc_type=ImportError)
    from dpaudit.cli.ui import settings_from
    from dpaudit.errors import ConfigError

    args = build_parser().parse_args(["ui", "--runs-dir", str(tmp_path), *flags])
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        settings_from(args)


def test_a_token_is_always_set_generated_or_given(tmp_path, monkeypatch):
    pytest.importorskip("fastapi", reason="the ui extra is not installed", exc_type=ImportError)
    from dpaudit.cli.ui import settings_from

    monkeypatch.delenv("DPAUDIT_UI_TOKEN", raising=False)
    one = settings_from(build_parser().parse_args(["ui", "--runs-dir", str(tmp_path)]))
    two = settings_from(build_parser().parse_args(["ui", "--runs-dir", str(tmp_path)]))
    assert len(one.token) >= 32 and one.token != two.token
    monkeypatch.setenv("DPAUDIT_UI_TOKEN", "from-the-environment-123")
    given = settings_from(build_parser().parse_args(["ui", "--runs-dir", str(tmp_path)]))
    assert given.token == "from-the-environment-123"


def test_loopback():
    from dpaudit.cli.ui import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.org")
