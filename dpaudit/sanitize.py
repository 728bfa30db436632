"""The one sanitiser for every string dpaudit prints, annotates or writes into XML or a report.

Strings in an ``audit.json``, a policy, a dataset or a model directory may come from someone else.
Printed raw, they can forge CI output: a newline followed by ``::notice ...::`` or
``::stop-commands::`` becomes a GitHub Actions workflow command, an ANSI escape (``ESC [2J``)
rewrites the reviewer's terminal, a bidi override (U+202E) reorders what a reviewer reads, and
most C0 characters make JUnit XML ill-formed (XML 1.0 forbids them even as character references).

:func:`clean_text` makes a string inert on one line: every such character is replaced by a
visible escape (``\\x1b``, ``\\n``, ``\\u202e``), so the text cannot start a new line and the
tampering stays visible; tabs become spaces. The result is capped at ``max_len`` characters (an
ellipsis marks the cut). :func:`guard_line` is for whole lines a command prints: a line that
would read as a workflow command (``::``, or the legacy ``##[``) is prefixed so it does not.

Examples:
    >>> clean_text("ok\\n::notice::fake")
    'ok\\\\n::notice::fake'
    >>> clean_text("x" * 10, max_len=5)
    'xxxx…'
"""

from __future__ import annotations

import re

__all__ = ["clean_text", "guard_line", "DEFAULT_MAX_LEN", "UNSAFE_CHARS"]

#: Default cap (characters) on one cleaned string.
DEFAULT_MAX_LEN = 2000

#: Characters never emitted raw: C0 controls, DEL, C1 controls (incl. NEL), the Arabic letter
#: mark, LRM/RLM, line/paragraph separators, bidi embeddings/overrides/isolates, the BOM,
#: the XML-invalid non-characters U+FFFE/U+FFFF and lone surrogates (not encodable as UTF-8).
UNSAFE_CHARS = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
    "\ufeff\ufffe\uffff\ud800-\udfff]")

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": " "}
_ELLIPSIS = "…"
_COMMAND_PREFIXES = ("::", "##[")


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean_text(text: object, max_len: int | None = DEFAULT_MAX_LEN) -> str:
    """Return ``str(text)`` on one line, with every unsafe character escaped and length capped.

    Args:
        text: any object; ``str(text)`` is cleaned.
        max_len: the most characters returned (an ellipsis replaces the tail when cut), or
            ``None`` for no cap (e.g. a whole rendered report, whose size the schema bounds).

    Returns:
        A string holding no character matched by :data:`UNSAFE_CHARS` (so no line break, no ESC,
        nothing XML 1.0 forbids) and at most ``max_len`` characters.

    Raises:
        ValueError: ``max_len`` below 1.
    """
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len must be in [1, inf), got max_len={max_len!r}.")
    s = str(text)
    if max_len is None:
        return UNSAFE_CHARS.sub(_escape, s)
    cut = len(s) > max_len
    # Escaping only lengthens: cut first, so a 10 MB field costs no more than a short one.
    s = UNSAFE_CHARS.sub(_escape, s[:max_len])
    if cut or len(s) > max_len:
        s = s[:max_len - 1] + _ELLIPSIS
    return s


def guard_line(line: str) -> str:
    """Return ``line`` cleaned, prefixed with ``"> "`` if it would read as a CI workflow command.

    For lines a command prints as data (tables, summaries); annotations that dpaudit means to emit
    are built separately and never pass through here.
    """
    line = clean_text(line, max_len=None)
    if line.strip().startswith(_COMMAND_PREFIXES):
        return "> " + line
    return line
