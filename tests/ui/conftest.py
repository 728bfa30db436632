"""Fixtures of the UI tests: skipped cleanly without the ui extra; a tiny model and CSV under the allowed root."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi", reason="the ui extra is not installed: pip install 'dpaudit[ui]'")
pytest.importorskip("uvicorn", reason="the ui extra is not installed: pip install 'dpaudit[ui]'")
pytest.importorskip("multipart", reason="the ui extra is not installed: pip install 'dpaudit[ui]'")

from tests.cli._helpers import save_tiny_model, write_csv  # noqa: E402
from tests.ui._server import Client, Server  # noqa: E402


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


#: the new-audit form of a tiny audit: ~20 s on one CPU core.
TINY = {"label": "tiny", "data_source": "upload", "model_source": "path", "privacy": "epsilon", "epsilon": "8",
        "shadows": "2", "epochs": "1", "batch_size": "32", "max_length": "16"}
