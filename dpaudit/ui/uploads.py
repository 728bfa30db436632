"""Uploaded image data: a zip of an ImageFolder (one subfolder per class, PNG or JPEG files) extracted safely.

The archive is checked member by member before anything is written, then extracted by streaming, counting
the bytes actually inflated (a header that lies about its size is caught):

* **Names.** No absolute path, drive letter, backslash, ``..``, empty or NUL component; no two members with
  the same name. ``__MACOSX/`` and dot files (``.DS_Store``) are skipped. Every file is ``CLASS/IMAGE`` (one
  common top folder is allowed above the classes) and a ``.png``, ``.jpg`` or ``.jpeg`` with that format's
  magic bytes.
* **Kinds.** Only regular files and folders: a symbolic link, device or FIFO member (its Unix mode) and an
  encrypted member are refused.
* **Sizes.** At most :data:`MAX_MEMBERS` members, :data:`MAX_UNCOMPRESSED` bytes inflated in all, and no member
  inflating more than :data:`MAX_RATIO` times its compressed size (PNG and JPEG hardly compress: a high ratio is
  a zip bomb).
* **Files.** Folders 0700, files 0600, created exclusively without following links (``O_EXCL | O_NOFOLLOW``).

The caller passes the extracted folder as ``dpaudit audit --data DIR``; the model decides the modality.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
import zlib
from pathlib import Path, PurePosixPath

MAX_MEMBERS = 20_000
MAX_UNCOMPRESSED = 1 << 30  # bytes inflated in all
MAX_RATIO = 100  # inflated / compressed bytes, per member
IMAGE_MAGIC = {".png": (b"\x89PNG\r\n\x1a\n",), ".jpg": (b"\xff\xd8\xff",), ".jpeg": (b"\xff\xd8\xff",)}
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1 << 16


class UnsafeArchive(ValueError):
    """A zip the UI refuses: one line naming the member and the fix."""


def extract_image_zip(data: bytes, dest: Path, *, max_members: int = MAX_MEMBERS,
                      max_total: int = MAX_UNCOMPRESSED, max_ratio: float = MAX_RATIO) -> Path:
    """Extract the ImageFolder zip ``data`` into the new folder ``dest``; returns the folder holding the class
    folders. ``UnsafeArchive`` (nothing left behind but ``dest``'s partial files, which the caller removes)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise UnsafeArchive("the upload is not a readable zip archive; zip the image folder again.") from None
    with archive:
        members = _checked_members(archive.infolist(), max_members=max_members, max_total=max_total,
                                   max_ratio=max_ratio)
        top = _common_top(members)
        dest.mkdir(mode=0o700)
        inflated = 0
        for info, parts in members:
            folder = dest
            for part in parts[:-1]:
                folder = folder / part
                if not folder.is_dir():
                    folder.mkdir(mode=0o700)  # fresh folders only: ``dest`` is new, names are checked
            try:
                inflated = _extract_one(archive, info, folder / parts[-1], inflated, max_total)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as err:
                raise UnsafeArchive(f"zip member '{info.filename}' is corrupt or unsupported ({err}); zip the "
                                    "image folder again.") from None
    return dest / top if top else dest


def _checked_members(infos, *, max_members: int, max_total: int, max_ratio: float):
    """The image members as ``(info, name parts)``, every check of the module docstring done on the headers."""
    if len(infos) > max_members:
        raise UnsafeArchive(f"the zip has {len(infos)} members, at most {max_members}; upload fewer images.")
    declared = sum(i.file_size for i in infos)
    if declared > max_total:
        raise UnsafeArchive(f"the zip inflates to {declared} bytes, at most {max_total}; upload fewer images.")
    seen, out = set(), []
    for info in infos:
        parts = _safe_parts(info.filename)
        kind = stat.S_IFMT(info.external_attr >> 16)  # 0: no Unix type recorded (a plain file)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchive(f"zip member '{info.filename}' is a link or special file; zip plain files only.")
        if info.flag_bits & 0x1:
            raise UnsafeArchive(f"zip member '{info.filename}' is encrypted; zip the images without a password.")
        if parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts) or info.is_dir():
            continue
        if info.file_size > max_ratio * max(info.compress_size, 1):
            raise UnsafeArchive(f"zip member '{info.filename}' inflates {info.file_size} bytes from "
                                f"{info.compress_size} (over {max_ratio:g}x): refused as a zip bomb.")
        key = "/".join(parts).lower()
        if key in seen:
            raise UnsafeArchive(f"zip member '{info.filename}' appears twice; zip each image once.")
        seen.add(key)
        if PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_MAGIC:
            raise UnsafeArchive(f"zip member '{info.filename}' is not a .png, .jpg or .jpeg image; zip an image "
                                "folder (one subfolder per class).")
        out.append((info, parts))
    if not out:
        raise UnsafeArchive("the zip holds no images; zip an image folder (one subfolder per class).")
    return out


def _safe_parts(name: str) -> tuple[str, ...]:
    if "\\" in name or "\x00" in name or name.startswith("/") or _DRIVE.match(name):
        raise UnsafeArchive(f"zip member '{name}' has an absolute or non-portable path; zip relative paths only.")
    parts = tuple(p for p in name.rstrip("/").split("/"))
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise UnsafeArchive(f"zip member '{name}' leaves its folder (empty, . or .. in the path); zip the image "
                            "folder itself.")
    return parts


def _common_top(members) -> str | None:
    """The one top folder above the class folders, if every image sits at ``TOP/CLASS/IMAGE``; images must
    be at ``CLASS/IMAGE`` otherwise."""
    depths = {len(parts) for _, parts in members}
    tops = {parts[0] for _, parts in members}
    if depths == {3} and len(tops) == 1:
        return next(iter(tops))
    if depths != {2}:
        raise UnsafeArchive("the zip is not an image folder: put every image in a class subfolder "
                            "(CLASS/IMAGE.png, optionally under one top folder).")
    return None


def _extract_one(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, inflated: int,
                 max_total: int) -> int:
    """Stream one member to ``target`` (0600, exclusive, no link followed); returns the bytes inflated so far."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o600)
    written = 0
    with os.fdopen(fd, "wb") as out, archive.open(info) as src:
        while chunk := src.read(_CHUNK):
            if written == 0 and not chunk.startswith(IMAGE_MAGIC[target.suffix.lower()]):
                raise UnsafeArchive(f"zip member '{info.filename}' is not a {target.suffix} image (wrong magic "
                                    "bytes); zip real PNG or JPEG files.")
            written += len(chunk)
            inflated += len(chunk)
            if written > info.file_size or inflated > max_total:
                raise UnsafeArchive(f"zip member '{info.filename}' inflates past its declared size or the "
                                    f"{max_total}-byte limit: refused as a zip bomb.")
            out.write(chunk)
    if written == 0:
        raise UnsafeArchive(f"zip member '{info.filename}' is empty; zip real PNG or JPEG files.")
    return inflated
