"""The embedded vision backbone is handed to ``from_pretrained`` only when every file has its pinned SHA-256:
a flipped weight byte, an edited config or processor, a missing file or a link is refused with one line."""

from __future__ import annotations

import os
import shutil

import pytest

from dpaudit import embedded_vision
from dpaudit.errors import ModelError


@pytest.fixture
def copy(tmp_path):
    folder = tmp_path / "embedded-vision"
    shutil.copytree(embedded_vision.shipped_vision_dir(), folder)
    return folder


def test_the_shipped_folder_matches_its_pins():
    assert set(embedded_vision.FILE_SHA256) == {"config.json", "model.safetensors", "preprocessor_config.json"}
    assert embedded_vision.embedded_vision_dir() == embedded_vision.shipped_vision_dir()
    assert embedded_vision.resolve_vision_path("embedded-vision") == str(embedded_vision.shipped_vision_dir())
    assert embedded_vision.resolve_vision_path("/my/model") == "/my/model"


def _refused(folder, match):
    with pytest.raises(ModelError, match=match) as err:
        embedded_vision.check_vision_dir(folder)
    assert "\n" not in str(err.value)


def test_one_flipped_weight_byte_is_refused(copy, monkeypatch):
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 1
    (copy / "model.safetensors").write_bytes(bytes(data))
    _refused(copy, r"'model\.safetensors' has sha256 .*tampered")
    monkeypatch.setattr(embedded_vision, "shipped_vision_dir", lambda: copy)  # the loader path checks too
    with pytest.raises(ModelError):
        embedded_vision.embedded_vision_dir()


@pytest.mark.parametrize("name", ["config.json", "preprocessor_config.json"])
def test_an_edited_config_or_processor_is_refused(copy, name):
    (copy / name).write_text((copy / name).read_text().replace("}", ', "x": 1}', 1))
    _refused(copy, name.replace(".", r"\."))


def test_a_missing_file_or_a_link_is_refused(copy, tmp_path):
    shutil.move(copy / "config.json", tmp_path / "config.json")
    _refused(copy, r"lacks 'config\.json'")
    os.symlink(tmp_path / "config.json", copy / "config.json")
    _refused(copy, r"lacks 'config\.json'")
