"""Zips of image folders for the UI tests: a good ImageFolder, and one hostile archive per refusal."""

from __future__ import annotations

import io
import stat
import zipfile

PNG = b"\x89PNG\r\n\x1a\n"


def png(seed: int, size: int = 8) -> bytes:
    """A real ``size``×``size`` RGB PNG (Pillow), different per ``seed``."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def make_zip(members: dict[str, bytes], *, links: dict[str, str] | None = None) -> bytes:
    """``members`` {name: bytes} deflated, ``links`` {name: target} as Unix symbolic-link members."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return out.getvalue()


def image_folder(per_class: int = 6, top: str = "", size: int = 8) -> dict[str, bytes]:
    return {f"{top}{cls}/{i}.png": png(10 * c + i, size) for c, cls in enumerate(("cat", "dog"))
            for i in range(per_class)}


#: name → (zip bytes, a fragment of the refusal)
HOSTILE = {
    # well-formed image folders but for the path: only the path check stands between them and a write outside
    "zip-slip": (make_zip({"../cat/evil.png": PNG + b"x", "../dog/evil.png": PNG + b"x"}), "leaves its folder"),
    "absolute": (make_zip({"/cat/evil.png": PNG + b"x", "/dog/evil.png": PNG + b"x"}), "absolute"),
    "backslash": (make_zip({"cat/1.png": PNG + b"x", "..\\evil.png": PNG + b"x"}), "absolute or non-portable"),
    "drive": (make_zip({"cat/1.png": PNG + b"x", "C:/evil.png": PNG + b"x"}), "absolute or non-portable"),
    "symlink": (make_zip({"cat/1.png": PNG + b"x"}, links={"dog/2.png": "/etc/passwd"}), "link or special"),
    "bomb": (make_zip({"cat/1.png": PNG + bytes(4 << 20), "dog/1.png": PNG + b"x"}), "zip bomb"),
    "not-an-image": (make_zip({"cat/1.png": PNG + b"x", "dog/run.sh": b"#!/bin/sh\n"}), "is not a .png"),
    "wrong-magic": (make_zip({"cat/1.png": PNG + b"x", "dog/1.png": b"GIF89a..."}), "wrong magic"),
    "duplicate": (make_zip({"cat/1.png": PNG + b"x", "Cat/1.PNG": PNG + b"y"}), "appears twice"),
    "flat": (make_zip({"1.png": PNG + b"x", "2.png": PNG + b"y"}), "not an image folder"),
    "empty": (make_zip({"cat/.DS_Store": b"x"}), "holds no images"),
}
