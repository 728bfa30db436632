"""Fixtures of the UI tests: a tiny model and CSV under the allowed root, a server, a logged-in client.
The test modules that need the ui extra skip themselves without it (``tests.ui._server.needs_ui``)."""

from __future__ import annotations

import pytest

from tests.cli._helpers import save_tiny_model, write_csv
from tests.ui._server import Client, Server


@pytest.fixture
def world(tmp_path):
    """``tmp_path`` with ``models/tiny`` (random BERT) and ``data.csv`` (80 rows)."""
    save_tiny_model(tmp_path / "models" / "tiny")
    write_csv(tmp_path / "data.csv", n=80)
    return tmp_path


@pytest.fixture
def server(world):
    srv = Server(world)
    yield srv
    srv.stop()


@pytest.fixture
def client(server):
    return Client(server).login()
