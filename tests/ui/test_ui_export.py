"""Export from the web UI: a finished `dpaudit train` run in the runs folder is listed, and its page's Export
button sends the Hugging Face folder `dpaudit export` writes, zipped; anything else is refused."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest

from tests.ui._server import needs_ui

needs_ui()

from tests.ui._server import Client, Server  # noqa: E402


@pytest.mark.slow
def test_a_train_run_exports_as_a_zip_of_the_hugging_face_folder(world):
    from dpaudit.cli.main import main

    run = world / "runs" / "pooler-run"
    assert main(["train", "--model", str(world / "models" / "tiny"), "--data", str(world / "data.csv"),
                 "--run-dir", str(run), "--epochs", "1", "--batch-size", "16", "--max-length", "16",
                 "--set", "model.pooling=pooler", "--epsilon", "8", "--quiet"]) == 0
    srv = Server(world)
    try:
        web = Client(srv).login()
        assert b"pooler-run" in web.get("/")[1]
        page = web.get("/runs/pooler-run")[1]
        assert b'id="export"' in page and b"train run" in page
        code, body, headers = web.post("/runs/pooler-run/export", {})
        assert code == 200 and headers["content-type"] == "application/zip", body[:300]
        names = zipfile.ZipFile(io.BytesIO(body)).namelist()
        assert {"model/config.json", "model/README.md", "model/dpaudit-privacy.json"} <= set(names)
        claim = json.loads(zipfile.ZipFile(io.BytesIO(body)).read("model/dpaudit-privacy.json"))
        assert claim["epsilon"] == pytest.approx(json.loads((run / "metrics.json").read_text())["epsilon"])
        assert web.post("/runs/pooler-run/export", {}, csrf=None)[0] == 403
        assert re.search(rb"only a finished", web.post("/runs/nope/export", {})[1]) is None  # 404, not 409
    finally:
        srv.stop()
