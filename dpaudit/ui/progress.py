"""What a running job is doing, read back from its log (the CLI's own output: tqdm bars and lines).

A tqdm bar in the log reads ``train ×3:  40%|████      | 4/10 [00:02<00:03,  1.9step/s, eps=3.21]``; the
last one gives the stage (``train ×3``, ``score``, ``reference``), the step (4 of 10), the ETA (00:03) and,
while training, ε so far (3.21). Later plain lines (``attack: loss``, ``wrote …/report.html``) move the stage on.
"""

from __future__ import annotations

import re
from pathlib import Path

_BAR = re.compile(r"^(?P<desc>[^|]*?):\s+(?P<pct>\d+)%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)\s*"
                  r"\[(?P<elapsed>[0-9:]+)<(?P<eta>[0-9:?]+)(?P<post>[^\]]*)\]")
_EPS = re.compile(r"eps=([0-9.]+(?:e[+-]?\d+)?)")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_STAGE_LINES = (("attack:", "attacks"), ("wrote ", "report"), ("audit:", "setup"), ("confidential:", "report"))
TAIL_BYTES = 64 << 10


def log_lines(path: Path, *, max_bytes: int = TAIL_BYTES) -> list[str]:
    """The log's last ``max_bytes`` as lines, each the last state of a ``\\r``-redrawn bar, ANSI codes removed."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return []
    text = _ANSI.sub("", data.decode("utf-8", errors="replace"))
    lines = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p.strip()]
        if parts:
            lines.append(parts[-1].rstrip())
    return lines


def progress(lines: list[str]) -> dict:
    """``{"stage", "step", "total", "eta", "epsilon"}`` from the log lines (``None`` where unknown)."""
    out: dict = {"stage": None, "step": None, "total": None, "eta": None, "epsilon": None}
    for line in lines:
        bar = _BAR.match(line.strip())
        if bar:
            out.update(stage=bar["desc"].strip(), step=int(bar["n"]), total=int(bar["total"]),
                       eta=None if "?" in bar["eta"] else bar["eta"])
            eps = _EPS.search(bar["post"])
            if eps:
                out["epsilon"] = float(eps.group(1))
            continue
        for prefix, stage in _STAGE_LINES:
            if line.startswith(prefix):
                out.update(stage=stage, step=None, total=None, eta=None)
    return out


def error_line(lines: list[str]) -> str | None:
    """The CLI's one ``error: …`` line, if the log holds one (the last)."""
    found = [line for line in lines if line.startswith("error: ")]
    return found[-1] if found else None
