"""Open the HTML report in headless Chromium: no console errors, a non-blank page, the ROC figure; and
the PDF that Chromium prints from it: its pages, its text (sign-off block, attack table, whole names).

Needs Debian's ``chromium`` (``apt-get install -y chromium``) and, for the PDF checks, ``poppler-utils``
(``pdftotext``, ``pdftoppm``); each is skipped cleanly without them.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dpaudit.report_schema import SignOff
from dpaudit.reports.html import render_html
from dpaudit.reports.pdf import write_pdf
from tests.reports import sample

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs /usr/bin/chromium (apt-get install -y chromium)")

# Test-only probe, appended to a copy of the report (the report itself has no scripts): after load,
# record whether the ROC image decoded and how many images failed.
PROBE = """<script>
window.addEventListener("load", () => {
  const roc = document.querySelector("#fig-roc img");
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.body.setAttribute("data-roc-width", roc ? roc.naturalWidth : -1);
  document.body.setAttribute("data-broken-images", broken);
});
</script>"""


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
           "--v=0", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "Uncaught" in line or "CONSOLE" in line]


@pytest.fixture(scope="module")
def html_file(tmp_path_factory) -> Path:
    report = sample.make_report(model_name="<script>alert('owned')</script>")
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


def test_screenshot_is_not_blank_and_console_is_clean(tmp_path, html_file):
    shot = tmp_path / "shot.png"
    result = _chromium(tmp_path, "--window-size=1100,1400", f"--screenshot={shot}", html_file.as_uri())
    assert shot.exists(), result.stderr[-2000:]
    assert _console_errors(result.stderr) == []
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[0] >= 1000 and pixels.shape[1] >= 1000
    non_white = np.mean(pixels.min(axis=-1) < 0.9)
    assert non_white > 0.05, f"screenshot looks blank ({non_white:.1%} non-white pixels)"
    assert pixels.std() > 0.05


def test_roc_figure_decodes_and_no_script_runs(tmp_path, html_file):
    probed = tmp_path / "probed.html"
    probed.write_text(html_file.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                      encoding="utf-8")
    result = _chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    dom = result.stdout
    assert 'data-broken-images="0"' in dom, result.stderr[-2000:]
    width = int(dom.split('data-roc-width="')[1].split('"')[0])
    assert width > 300
    assert _console_errors(result.stderr) == []
    assert "&lt;script&gt;alert('owned')&lt;/script&gt;" in dom


def _non_white(png: Path) -> float:
    import matplotlib.image

    pixels = matplotlib.image.imread(png)[..., :3]
    return float(np.mean(pixels.min(axis=-1) < 0.9))


#: A model name with hyphens, as in issue 24 ("gtall-minilm" was broken across lines by the old PDF).
MODEL = "gtall-minilm-l12-h384-uncased"
needs_poppler = pytest.mark.skipif(not (shutil.which("pdftotext") and shutil.which("pdftoppm")),
                                   reason="needs pdftotext/pdftoppm (apt-get install -y poppler-utils)")


@pytest.fixture(scope="module")
def signed_pdf(tmp_path_factory) -> Path:
    report = sample.make_report(model_name=MODEL, family=True)
    report = dataclasses.replace(report, sign_off=SignOff(reviewer="Ada Lovelace", role="data protection officer",
                                                          decision="approve_with_conditions", date="2026-12-02",
                                                          conditions="internal use only"))
    return write_pdf(report, tmp_path_factory.mktemp("pdf") / "report.pdf")


@needs_poppler
def test_pdf_is_printed_by_chromium_with_the_sign_off_and_the_attack_table(signed_pdf):
    info = subprocess.run(["pdfinfo", str(signed_pdf)], capture_output=True, text=True, check=True).stdout
    assert "Skia/PDF" in info  # Chromium's PDF backend, not a hand layout
    pages = int(info.split("Pages:")[1].split()[0])
    assert pages >= 1
    text = subprocess.run(["pdftotext", "-layout", str(signed_pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    for label in ("Sign-off", "reviewer", "role", "date", "decision", "signature", "Ada Lovelace",
                  "data protection officer", "2026-12-02", "approve with conditions", "internal use only"):
        assert label in text, label
    header = next(line for line in text.splitlines() if "members /" in line)
    assert all(col in header for col in ("attack", "status", "AUC", "TPR@FPR")), header
    for name in ("loss", "shadow", "lira_online", "rmia"):
        assert any(line.split()[:1] == [name] for line in text.splitlines()), f"no attack-table row for {name}"
    # Names are never broken: the model name appears whole (title, provenance, sign-off scope) and no
    # line ends in one of its pieces.
    plain = subprocess.run(["pdftotext", str(signed_pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert plain.count(MODEL) >= 3, plain.count(MODEL)
    assert not any(line.rstrip().endswith(("gtall-", "minilm-", "lira_onli")) for line in plain.splitlines())
    assert "ε ≥ 0.41 with 95% confidence, family-wise" in " ".join(plain.split())


@needs_poppler
def test_pdf_pages_are_not_blank(tmp_path, signed_pdf):
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(signed_pdf), str(tmp_path / "page")], check=True,
                   timeout=120)
    pngs = sorted(tmp_path.glob("page-*.png"))
    assert pngs and all(_non_white(p) > 0.01 for p in pngs), [round(_non_white(p), 3) for p in pngs]


def test_first_screen_shows_the_headline(tmp_path):
    """The first screen (1280×1600) of a signed, family-wise report is drawn and non-blank."""
    report = sample.make_report(model_name=MODEL, family=True)
    page = tmp_path / "report.html"
    page.write_text(render_html(report, dpi=60), encoding="utf-8")
    shot = tmp_path / "first.png"
    result = _chromium(tmp_path, "--window-size=1280,1600", f"--screenshot={shot}", page.as_uri())
    assert shot.exists(), result.stderr[-2000:]
    assert _non_white(shot) > 0.05


def test_console_error_detection_is_not_vacuous(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body>x<script>undefinedFunction();</script></body></html>")
    result = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert any("Uncaught ReferenceError" in line for line in _console_errors(result.stderr))
