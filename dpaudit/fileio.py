"""Safe, atomic writes for everything dpaudit puts on disk.

:func:`write_bytes_atomic` is the one writer: it creates a temporary sibling with a random name
(``O_CREAT | O_EXCL | O_NOFOLLOW``, so a planted file or symbolic link is never opened or written
through), writes and ``fsync``s it, renames it over the target (atomic: a kill leaves either the old
file or the new one, never half of one) and ``fsync``s the directory so the rename survives a power
loss. A target that is a symbolic link is refused: dpaudit never writes through a link it did not make
(``report.html -> ~/.ssh/authorized_keys`` in a run directory received from someone else).

File modes: sensitive artefacts (membership, signals, data splits, checkpoints) are created ``0600``
(``private=True``, the default); reports and ``audit.json``, which are meant to be shared, ``0644``.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from dpaudit.errors import ConfigError

PRIVATE_MODE = 0o600
SHARED_MODE = 0o644


def refuse_symlink(path: Path) -> None:
    """Raise ``ConfigError`` when ``path`` is a symbolic link (dangling or not)."""
    if path.is_symlink():
        raise ConfigError(f"'{path}' is a symbolic link; dpaudit never writes through links — remove it or use a "
                          f"new output directory.")


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # some filesystems do not allow opening a directory; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | Path, data: bytes, *, private: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically without following symbolic links.

    Args:
        path: the target file; its parent directory must exist.
        data: the complete file contents.
        private: mode ``0600`` (True, default) or ``0644`` (shareable outputs).

    Raises:
        ConfigError: ``path`` is a symbolic link, or its directory is missing or not writable.
    """
    path = Path(path)
    refuse_symlink(path)
    if not path.parent.is_dir():
        raise ConfigError(f"directory '{path.parent}' does not exist; create it or choose another output path.")
    mode = PRIVATE_MODE if private else SHARED_MODE
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, mode)
    except OSError as err:
        raise ConfigError(f"cannot write in '{path.parent}' ({err.strerror}); choose a writable output directory."
                          ) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)  # exact mode whatever the umask
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # replaces a link placed after the check instead of writing through it
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def write_text_atomic(path: str | Path, text: str, *, private: bool = True) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"), private=private)


def write_json_atomic(path: str | Path, obj: Any, *, sort_keys: bool = True, private: bool = True) -> Path:
    """JSON with ``allow_nan=False``: a NaN or infinity is a bug to surface, not a value to store."""
    return write_text_atomic(path, json_text(obj, sort_keys=sort_keys), private=private)


def json_text(obj: Any, *, sort_keys: bool = True) -> str:
    return json.dumps(obj, indent=2, sort_keys=sort_keys, allow_nan=False) + "\n"
