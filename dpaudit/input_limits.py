"""Bounds on untrusted structured input (``audit.json``, policies): size, depth, lengths, numbers.

A report or policy may come from someone else. Without bounds a hostile file turns into a
traceback or a denial of service downstream: 500-deep nesting overflows recursive walkers
(``RecursionError``), ``10**400`` overflows ``float()`` (``OverflowError``), a 1M-bin histogram
takes a minute to draw, ``/dev/zero`` as a path never finishes reading. Every check here is
iterative, stops at the first violation and raises one line, so a hostile file is refused in
milliseconds instead of rendered.

Examples:
    >>> check_json_limits({"a": [1, 2.5, "x"]}, what="report", error=ValueError)
"""

from __future__ import annotations

import dataclasses
import math
import os
import stat
from pathlib import Path
from typing import Any

__all__ = ["JsonLimits", "read_capped", "check_json_limits", "path_str", "format_bytes", "open_regular"]


@dataclasses.dataclass(frozen=True)
class JsonLimits:
    """Generic bounds on a parsed JSON/TOML value.

    Attributes:
        max_depth: deepest nesting of objects/arrays (the root is depth 0).
        max_items: most entries of one object or array.
        max_chars: longest string (keys included), in characters.
        max_abs_int: largest absolute integer (``2**63 - 1``: what int64 and every reader hold).
        max_abs_float: largest absolute float (``inf``: any finite one). A report sets ``1e15`` so
            axis ranges and tick spacings computed from its numbers cannot overflow.
    """

    max_depth: int = 64
    max_items: int = 10_000
    max_chars: int = 10_000
    max_abs_int: int = 2**63 - 1
    max_abs_float: float = math.inf


def path_str(parts: Any) -> str:
    """``("attacks", 0, "auc")`` → ``"attacks/0/auc"`` (``"(root)"`` when empty)."""
    return "/".join(str(p) for p in parts) or "(root)"


def format_bytes(n: int) -> str:
    """``65536`` → ``"64 KiB"``, ``52428800`` → ``"50 MiB"``: the largest binary unit that fits, exact or to 0.1."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: Path, *, what: str, error: type[Exception]) -> int:
    """A read-only descriptor of ``path``, opened only if it is a regular file (links to one are followed).

    Opened with ``O_NONBLOCK``, so a FIFO or a device is refused at once instead of blocking forever.

    Raises:
        FileNotFoundError, OSError: as ``os.open`` raises them (callers word these).
        error: ``path`` is a directory, FIFO, device or socket.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
                 | getattr(os, "O_CLOEXEC", 0))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(f"{what} {path} is {_kind(mode)}, not a regular file; give the path of a file.")
    return fd


def read_capped(path: Path, max_bytes: int, *, what: str, error: type[Exception]) -> bytes:
    """Read at most ``max_bytes`` from the regular file ``path``; a larger file raises, and so does a FIFO,
    a device (``/dev/zero``) or a directory (:func:`open_regular`).

    Raises:
        FileNotFoundError, OSError: as ``open`` raises them (callers word these).
        error: the file holds more than ``max_bytes`` bytes, or is not a regular file.
    """
    with os.fdopen(open_regular(path, what=what, error=error), "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise error(f"{what} {path} is larger than {format_bytes(max_bytes)}; refusing to read it "
                    "(a real one is far smaller: check the path).")
    return data


def _bad_string(value: str, limits: JsonLimits) -> str | None:
    if len(value) > limits.max_chars:
        return f"a string of {len(value)} characters (at most {limits.max_chars})"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "a lone surrogate (not valid Unicode text)"
    return None


def _bad_scalar(value: Any, limits: JsonLimits) -> str | None:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            return f"{value!r} is not a finite number"
        return None if abs(value) <= limits.max_abs_float else (
            f"{value!r} is beyond ±{limits.max_abs_float:g}")
    if kind is int:
        return None if -limits.max_abs_int <= value <= limits.max_abs_int else (
            f"an integer beyond ±{limits.max_abs_int} (integers must be bounded)")
    if kind is str:
        return _bad_string(value, limits)
    return None


def check_json_limits(data: Any, *, what: str, error: type[Exception],
                      limits: JsonLimits | None = None) -> None:
    """Walk ``data`` (dicts, lists, scalars) iteratively and raise at the first value out of bounds.

    Checks nesting depth, entries per container, string length and valid Unicode, integer
    magnitude, and that every float is finite (``1e400`` parses as ``inf``).

    Args:
        data: the parsed value. what: how the message names it. error: exception type raised.
        limits: the bounds; default :class:`JsonLimits` ().

    Raises:
        error: one line, ``"{what} is invalid at {path}: {problem}"``.
    """
    limits = JsonLimits() if limits is None else limits
    def fail(path: tuple[Any, ...], problem: str) -> None:
        raise error(f"{what} is invalid at {path_str(path)}: {problem}.")

    if not isinstance(data, (dict, list)):
        problem = _bad_scalar(data, limits)
        if problem:
            fail((), problem)
        return
    stack: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while stack:
        value, path = stack.pop()
        if len(path) > limits.max_depth:
            fail(path, f"nesting deeper than {limits.max_depth} levels")
        if len(value) > limits.max_items:
            fail(path, f"{len(value)} entries (at most {limits.max_items})")
        if isinstance(value, dict):
            for key in value:
                if isinstance(key, str) and _bad_string(key, limits):
                    fail(path, f"a key that is {_bad_string(key, limits)}")
            items = value.items()
        else:
            items = enumerate(value)
        for key, item in items:
            if type(item) is dict or type(item) is list:
                stack.append((item, (*path, key)))
                continue
            problem = _bad_scalar(item, limits)
            if problem:
                fail((*path, key), problem)
