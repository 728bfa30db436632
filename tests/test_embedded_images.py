"""The embedded image task's .deb is extracted with the standard library (ar + data.tar.xz), only its IDX and
copyright files, and the private task is classes 5-9 relabelled 0-4."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile

import numpy as np

from dpaudit import embedded_images as ei
from dpaudit.cli.main import main as cli_main


def _idx(arr) -> bytes:
    header = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return gzip.compress(header + arr.astype(np.uint8).tobytes())


def _ar(members: dict[str, bytes]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members.items():
        out += f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}`\n".encode() + data
        out += b"\n" if len(data) % 2 else b""
    return out


def fake_deb(tmp_path):
    labels = np.arange(20) % 10
    files = {"copyright": b"Expat", "README": b"not extracted"}
    for split in ("train", "t10k"):
        files[f"{split}-images-idx3-ubyte.gz"] = _idx(np.repeat(labels, 4).reshape(20, 2, 2) * 10)
        files[f"{split}-labels-idx1-ubyte.gz"] = _idx(labels)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:xz") as tar:
        for name, data in files.items():
            folder = "doc/dataset-fashion-mnist" if name in ("copyright", "README") else "datasets/fashion-mnist"
            info = tarfile.TarInfo(f"./usr/share/{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    deb = tmp_path / ei.DEB_FILE
    deb.write_bytes(_ar({"debian-binary": b"2.0\n", "control.tar.xz": b"", "data.tar.xz": tar_bytes.getvalue()}))
    return deb


def test_fetch_assets_deb_extracts_only_the_data_and_the_task_is_classes_5_to_9(tmp_path, monkeypatch, capsys):
    deb = fake_deb(tmp_path)
    monkeypatch.setattr(ei, "DEB_SHA256", hashlib.sha256(deb.read_bytes()).hexdigest())
    monkeypatch.setattr(ei, "images_root", lambda: tmp_path / "root" / "fashion_mnist")
    assert cli_main(["fetch-assets", "--deb", str(deb)]) == 0
    root = tmp_path / "root" / "fashion_mnist"
    assert sorted(p.name for p in root.iterdir()) == sorted(["DEB-PIN", "copyright", *(
        f"{s}-{k}-ubyte.gz" for s in ("train", "t10k") for k in ("images-idx3", "labels-idx1"))])
    assert ei.images_present(root)
    ds = ei.load_embedded_images()
    assert ds.label_names == ("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    assert ds.labels.tolist() == [0, 1, 2, 3, 4] * 2 and ds.pixels.shape == (10, 2, 2, 1)
    assert ds.pixels[:, 0, 0, 0].tolist() == [50, 60, 70, 80, 90] * 2  # original classes 5-9
    capsys.readouterr()
    assert cli_main(["fetch-assets", "--images"]) == 0  # present: nothing to do, no download
    assert "already present" in capsys.readouterr().out
