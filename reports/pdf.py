"""PDF report for sign-off: the HTML report printed by headless Chromium.

The PDF is the HTML report (:func:`dpaudit.reports.html.render_html`) laid out by a real browser
engine with the template's ``@media print`` rules (A4, page breaks, table rows and the sign-off
block kept whole), so both show the same text, tables and figures, and names wrap as words, never
at their hyphens. Why Chromium and not WeasyPrint: Debian ships it as one package (``chromium``)
that the CI image already installs for the browser test, it needs no Python wheels with native
cairo/pango dependencies, and it is the engine reviewers' own browsers print with.

Chromium runs on a private temporary copy of the HTML, with the network and every background
service off (the page itself fetches nothing) and a time limit. Without Chromium, writing a PDF
fails with one line naming the package to install (exit 2); there is no fallback layout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from dpaudit.errors import ConfigError
from dpaudit.fileio import refuse_symlink, write_bytes_atomic
from dpaudit.report_schema import AuditReport
from dpaudit.sanitize import clean_text

__all__ = ["write_pdf", "find_chromium", "print_to_pdf", "CHROMIUM_FLAGS", "TIMEOUT_S", "MISSING_ENGINE"]

#: Seconds one print may take before it is abandoned.
TIMEOUT_S = 120

#: Headless flags: no GPU, no network services, no first-run or sync work that could hang offline.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--no-pdf-header-footer")

_NAMES = ("chromium", "chromium-browser")
MISSING_ENGINE = ("PDF output needs Chromium, which is not installed: install the Debian package `chromium` "
            "(apt-get install -y chromium), or set DPAUDIT_CHROMIUM to its path, or choose --format html,md.")


def find_chromium() -> str | None:
    """Path of the Chromium executable (``$DPAUDIT_CHROMIUM``, else ``chromium`` on PATH), or ``None``."""
    override = os.environ.get("DPAUDIT_CHROMIUM")
    if override:
        return override if os.access(override, os.X_OK) else None
    return next((found for name in _NAMES if (found := shutil.which(name))), None)


def print_to_pdf(html: str, *, timeout_s: float = TIMEOUT_S) -> bytes:
    """Print the HTML document ``html`` to PDF with headless Chromium; returns the PDF bytes.

    Raises:
        ConfigError: Chromium is not installed, timed out, or produced no PDF (one line, with the fix).
    """
    chromium = find_chromium()
    if chromium is None:
        raise ConfigError(MISSING_ENGINE)
    with tempfile.TemporaryDirectory(prefix="dpaudit-pdf-") as tmp:
        page, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={Path(tmp) / 'profile'}",
               f"--print-to-pdf={out}", page.as_uri()]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False,
                                    stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise ConfigError(f"Chromium did not finish printing the PDF within {timeout_s:g} s; retry, or "
                              "choose --format html,md.") from None
        except OSError as err:
            raise ConfigError(f"cannot run Chromium ({clean_text(chromium, max_len=200)}): "
                              f"{clean_text(err, max_len=200)}; reinstall the `chromium` package.") from None
        data = out.read_bytes() if out.is_file() else b""
        if not data.startswith(b"%PDF-"):
            tail = clean_text(" ".join(result.stderr.split()[-30:]), max_len=300)
            raise ConfigError(f"Chromium wrote no PDF (exit {result.returncode}): {tail or 'no message'}; "
                              "check that the `chromium` package runs headless here.")
    return data


def write_pdf(report: AuditReport, path: str | Path) -> Path:
    """Write the sign-off PDF for ``report`` to ``path`` (atomically, never through a link); returns the path.

    Raises:
        ConfigError: Chromium is missing or failed (see :func:`print_to_pdf`); nothing is written then.
    """
    from dpaudit.reports.html import render_html

    path = Path(path)
    refuse_symlink(path)
    if find_chromium() is None:  # before rendering the figures: fail at once
        raise ConfigError(MISSING_ENGINE)
    return write_bytes_atomic(path, print_to_pdf(render_html(report, dpi=150)), private=True)
