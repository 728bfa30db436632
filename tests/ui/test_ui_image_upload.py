"""Image data from the web UI: a zip of an ImageFolder is extracted safely into the job's upload folder
(0700 folders, 0600 files) and passed as ``--data DIR``; every hostile archive (zip-slip, absolute paths,
links, zip bombs, too many members or bytes, non-images) is refused before a job exists (the HTTP side of each
refusal: tests/ui/test_ui_security.py). The image audit itself through the UI is `slow` and needs
``dpaudit.image_data``."""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import zipfile
import stat
import time

import pytest

from tests.ui._server import needs_ui

needs_ui()

from dpaudit.ui import forms  # noqa: E402
from dpaudit.ui.uploads import UnsafeArchive, extract_image_zip  # noqa: E402
from tests.ui._zips import HOSTILE, PNG, image_folder, make_zip  # noqa: E402


def _modes(root):
    return {stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_file()}, \
        {stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")] if p.is_dir()}


@pytest.mark.parametrize("top", ["", "pets/"])
def test_an_image_folder_zip_is_extracted_private_and_passed_as_data_dir(tmp_path, top):
    members = {**image_folder(per_class=2, top=top), "__MACOSX/._x.png": b"junk", f"{top}cat/.DS_Store": b"x"}
    uploads = tmp_path / "upload"
    uploads.mkdir(mode=0o700)
    data_dir = forms.save_upload("my pets.zip", make_zip(members), uploads, limit=1 << 20)
    assert data_dir == uploads / "my_pets" / top.rstrip("/") if top else data_dir == uploads / "my_pets"
    assert sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*.png")) == [
        "cat/0.png", "cat/1.png", "dog/0.png", "dog/1.png"]
    assert not list(uploads.rglob("._x.png")) and not list(uploads.rglob(".DS_Store"))
    assert _modes(uploads / "my_pets") == ({0o600}, {0o700})
    form = {"data_source": "upload", "model_source": "embedded", "privacy": "high"}
    argv = forms.audit_argv(form, data_path=str(data_dir), roots=[tmp_path])
    assert argv[:2] == ["--data", str(data_dir)]


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_each_hostile_zip_is_refused_with_one_line(tmp_path, case):
    data, fragment = HOSTILE[case]
    with pytest.raises(UnsafeArchive, match=fragment) as err:
        extract_image_zip(data, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not list(tmp_path.rglob("evil.png"))  # a partial "out" is removed with the job folder (app.py)


def test_member_count_and_total_size_limits_and_a_header_that_lies(tmp_path):
    good = make_zip(image_folder(per_class=3))
    with pytest.raises(UnsafeArchive, match="has 6 members, at most 5"):
        extract_image_zip(good, tmp_path / "a", max_members=5)
    with pytest.raises(UnsafeArchive, match="inflates to .* bytes, at most 100"):
        extract_image_zip(good, tmp_path / "b", max_total=100)
    # the headers say 9 bytes; the stream inflates 10 008: caught while extracting, never trusted
    liar = bytearray(make_zip({"cat/1.png": PNG + bytes(10_000), "dog/1.png": PNG + b"x"}))
    local = zipfile.ZipFile(io.BytesIO(bytes(liar))).getinfo("cat/1.png").header_offset
    central = bytes(liar).find(b"PK\x01\x02")
    liar[local + 22:local + 26] = liar[central + 24:central + 28] = (9).to_bytes(4, "little")
    with pytest.raises(UnsafeArchive, match="corrupt|past its declared size"):
        extract_image_zip(bytes(liar), tmp_path / "c")


def test_a_zip_upload_needs_the_zip_header(tmp_path):
    with pytest.raises(forms.FormError, match="not a zip archive"):
        forms.save_upload("x.zip", b"PNG not a zip", tmp_path, limit=1 << 20)


@pytest.mark.slow
def test_an_image_zip_audits_end_to_end_through_the_ui(tmp_path):
    """Upload an ImageFolder zip with a tiny vision model (``num_channels`` in its config.json): the job
    finishes with a report. Skipped until image support (``dpaudit.image_data.load_image_dataset``) is here."""
    if importlib.util.find_spec("dpaudit.image_data") is None or not hasattr(
            importlib.import_module("dpaudit.image_data"), "load_image_dataset"):
        pytest.skip("image support (dpaudit.image_data.load_image_dataset) is not in this checkout")
    from tests.ui._server import Client, Server

    from transformers import ViTConfig, ViTForImageClassification

    model = tmp_path / "models" / "vit"
    ViTForImageClassification(ViTConfig(image_size=8, patch_size=4, num_channels=3, hidden_size=16,
                                        num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                        num_labels=2)).save_pretrained(model)
    srv = Server(tmp_path)
    try:
        web = Client(srv).login()
        form = {"label": "images", "data_source": "upload", "model_source": "path", "model_path": str(model),
                "privacy": "epsilon", "epsilon": "8", "shadows": "2", "epochs": "1", "batch_size": "8"}
        code, body, _ = web.post("/new", form, {"data_file": ("pets.zip", make_zip(image_folder(per_class=20)))})
        assert code == 200, body[-600:]
        job = next(srv.runs.iterdir())
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and json.loads((job / "ui-job.json").read_text())["status"] in (
                "queued", "running"):
            time.sleep(1)
        assert json.loads((job / "ui-job.json").read_text())["status"] == "done", (job / "ui.log").read_text()
        assert (job / "run" / "audit.json").is_file()
    finally:
        srv.stop()
