"""Fixtures of the UI tests: a tiny model and CSV under the allowed root, and ONE server shared by the browser
flow and the security tests (a server start costs seconds on a loaded CI machine).
The test modules that need the ui extra skip themselves without it (``tests.ui._server.needs_ui``)."""

from __future__ import annotations

import pytest

from tests.cli._helpers import save_tiny_model, write_csv


@pytest.fixture
def world(tmp_path):
    """``tmp_path`` with ``models/tiny`` (random BERT) and ``data.csv`` (80 rows)."""
    save_tiny_model(tmp_path / "models" / "tiny")
    write_csv(tmp_path / "data.csv", n=80)
    return tmp_path


@pytest.fixture(scope="session")
def shared(tmp_path_factory):
    """One ``dpaudit ui`` for the session, bound to 0.0.0.0 (not loopback: the token must still guard it;
    reached at 127.0.0.1) with a 1 MiB upload limit, ``models/tiny`` and ``data.csv`` under its root and its
    own empty ``TMPDIR`` (what it leaves there is seen). Tests that make jobs compare the runs folder before
    and after, never assume it empty."""
    from tests.ui._server import Server

    root = tmp_path_factory.mktemp("ui-shared")
    save_tiny_model(root / "models" / "tiny")
    write_csv(root / "data.csv", n=80)
    (root / "tmp").mkdir(mode=0o700)
    srv = Server(root, "--host", "0.0.0.0", "--max-upload-mb", "1", env={"TMPDIR": str(root / "tmp")})
    srv.url = srv.url.replace("0.0.0.0", "127.0.0.1")
    yield srv
    srv.stop()
