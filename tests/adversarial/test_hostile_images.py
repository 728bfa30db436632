"""Hostile image inputs are refused with one line naming the file and the fix, before they cost memory or
time: decompression bombs, corrupt files, paths out of the folder, lying IDX headers, FIFOs, too many images,
and a wrong .deb for the embedded task."""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest
from PIL import Image

from dpaudit import image_decode
from dpaudit.cli.main import main as cli_main
from dpaudit.errors import DataError
from dpaudit.image_data import load_image_dataset


def _png(path, size=(8, 8), value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0]), value, dtype=np.uint8), "L").save(path)


def _folder(root, per_class=2):
    for cls in ("a", "b"):
        for i in range(per_class):
            _png(root / cls / f"{i}.png", value=i)
    return root


def _refused(match, path, **kwargs):
    with pytest.raises(DataError, match=match) as err:
        load_image_dataset(path, **kwargs)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_oversized_image_is_refused_from_its_header_by_dpaudits_own_cap(tmp_path, monkeypatch):
    root = _folder(tmp_path / "imgs")
    _png(root / "a" / "big.png", size=(64, 64))  # 4,096 pixels: over a cap of 100
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's check off: only ours is left
    monkeypatch.setattr(image_decode, "MAX_PIXELS", 100)
    msg = _refused(r"big\.png' is 64×64 = 4,096 pixels, over the limit of 100", root)
    assert "downscale" in msg


@pytest.mark.parametrize("side", [12, 64])  # 144 px: Pillow's warning (made an error); 4,096: its error
def test_decompression_bomb_under_pillows_lowered_limit(tmp_path, monkeypatch, side):
    root = _folder(tmp_path / "imgs")
    _png(root / "a" / "big.png", size=(side, side))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    _refused(r"big\.png.*(decompression bomb|over the limit)", root)


def test_pillows_own_bomb_error_becomes_one_line(tmp_path, monkeypatch):
    """Pillow raises DecompressionBombError itself at 2× its limit; our pixel cap is lifted to reach it."""
    root = _folder(tmp_path / "imgs")
    _png(root / "b" / "big.png", size=(64, 64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    monkeypatch.setattr(image_decode, "pixel_limit", lambda: 10**9)
    _refused(r"big\.png.*decompression bomb", root)


@pytest.mark.parametrize("payload", [b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b"not an image at all"])
def test_corrupt_image_is_one_line(tmp_path, payload):
    root = _folder(tmp_path / "imgs")
    (root / "a" / "broken.png").write_bytes(payload)
    _refused(r"broken\.png.*(not a readable image|could not be decoded)", root)


def test_truncated_png_is_one_line(tmp_path):
    root = _folder(tmp_path / "imgs")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8), "L").save(root / "a" / "cut.png")
    data = (root / "a" / "cut.png").read_bytes()
    (root / "a" / "cut.png").write_bytes(data[: len(data) // 2])
    _refused(r"cut\.png", root, image_size=8)


@pytest.mark.parametrize("cell", ["../outside.png", "{abs}"])
def test_table_paths_may_not_leave_the_tables_folder(tmp_path, cell):
    _png(tmp_path / "outside.png")
    (tmp_path / "data").mkdir()
    _png(tmp_path / "data" / "in.png")
    cell = cell.format(abs=tmp_path / "outside.png")
    (tmp_path / "data" / "t.csv").write_text(f"image,label\nin.png,0\n{cell},1\n")
    _refused("outside its folder", tmp_path / "data" / "t.csv")


def test_a_link_out_of_the_image_folder_is_refused(tmp_path):
    root = _folder(tmp_path / "imgs")
    _png(tmp_path / "secret.png")
    os.symlink(tmp_path / "secret.png", root / "a" / "link.png")
    _refused(r"link\.png.*leads outside the folder", root)


def test_a_fifo_named_like_an_image_is_refused_without_blocking(tmp_path):
    root = _folder(tmp_path / "imgs")
    os.mkfifo(root / "a" / "pipe.png")
    _refused(r"pipe\.png.*not a regular file", root)


def test_empty_class_folder_and_no_class_folders(tmp_path):
    root = _folder(tmp_path / "imgs")
    (root / "c").mkdir()
    _refused(r"class folder .*c' holds no image files", root)
    (tmp_path / "flat").mkdir()
    _png(tmp_path / "flat" / "x.png")
    _refused("no class subfolders", tmp_path / "flat")


def test_too_many_images_and_too_large_a_file(tmp_path, monkeypatch):
    root = _folder(tmp_path / "imgs", per_class=3)
    monkeypatch.setattr(image_decode, "MAX_IMAGES", 5)
    _refused("over the limit of 5", root)
    monkeypatch.setattr(image_decode, "MAX_IMAGES", 100)
    monkeypatch.setattr(image_decode, "MAX_FILE_BYTES", 10)
    _refused(r"\.png' is .*over the limit", root)


def test_single_class_is_refused(tmp_path):
    _png(tmp_path / "imgs" / "only" / "0.png")
    _refused("single class", tmp_path / "imgs")


def _idx_header(ndim, shape):
    return struct.pack(">HBB", 0, 8, ndim) + struct.pack(f">{ndim}I", *shape)


def test_idx_header_that_lies_is_refused_before_reading(tmp_path):
    """A 60-byte file claiming 2^32-1 images of 2^16 × 2^16 pixels must not make the reader allocate them."""
    with gzip.open(tmp_path / "x-images-idx3-ubyte.gz", "wb") as f:
        f.write(_idx_header(3, (2**32 - 1, 2**16, 2**16)))
    with gzip.open(tmp_path / "x-labels-idx1-ubyte.gz", "wb") as f:
        f.write(_idx_header(1, (2,)) + b"\x00\x01")
    _refused("beyond the limits", tmp_path / "x-images-idx3-ubyte.gz")


def test_idx_truncated_or_with_trailing_data(tmp_path):
    images = tmp_path / "x-images-idx3-ubyte"
    (tmp_path / "x-labels-idx1-ubyte").write_bytes(_idx_header(1, (2,)) + b"\x00\x01")
    images.write_bytes(_idx_header(3, (2, 3, 3)) + b"\x00" * 10)
    _refused("truncated", images)
    images.write_bytes(_idx_header(3, (2, 3, 3)) + b"\x00" * 19)
    _refused("data after", images)
    images.write_bytes(_idx_header(3, (2, 3, 3)) + b"\x00" * 18)
    assert load_image_dataset(images).pixels.shape == (2, 3, 3, 1)


def test_fetch_assets_refuses_a_deb_with_the_wrong_hash(tmp_path, capsys, monkeypatch):
    from dpaudit import embedded_images

    monkeypatch.setattr(embedded_images, "images_root", lambda: tmp_path / "root")
    fake = tmp_path / embedded_images.DEB_FILE
    fake.write_bytes(b"!<arch>\nnot the pinned package")
    assert cli_main(["fetch-assets", "--deb", str(fake)]) == 2
    err = capsys.readouterr().err
    assert "hash mismatch" in err and "refused" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "root").exists()
