"""Open the HTML report in headless Chromium: no console errors, a non-blank page, the ROC figure.

Needs Debian's ``chromium`` (``apt-get install -y chromium``); skipped cleanly without it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from dpaudit.reports.html import render_html
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


def test_console_error_detection_is_not_vacuous(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body>x<script>undefinedFunction();</script></body></html>")
    result = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert any("Uncaught ReferenceError" in line for line in _console_errors(result.stderr))
