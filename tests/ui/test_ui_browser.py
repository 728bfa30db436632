"""The web UI in a real browser (Debian's chromium + chromium-driver through Selenium): upload a CSV, run a
tiny audit, watch it finish, open the report, gate it, sign it off and download the PDF. The one browser flow
of the default suite: the session's shared server (tests/ui/conftest.py), the smallest audit that still runs
every stage (40 rows, 2 shadows, 1 epoch, 8 tokens)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.cli._helpers import write_csv
from tests.ui._server import needs_ui

needs_ui()

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.expected_conditions import staleness_of  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="chromium and chromium-driver (apt) are not installed")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--window-size=1280,1000")


def browser(profile: Path, downloads: Path):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    return webdriver.Chrome(options=options, service=Service(DRIVER))


@pytest.fixture
def driver(tmp_path):
    (tmp_path / "downloads").mkdir()
    drv = browser(tmp_path / "profile", tmp_path / "downloads")
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def _fill(driver, values: dict) -> None:
    for element_id, text in values.items():
        box = driver.find_element(By.ID, element_id)
        box.clear()
        box.send_keys(text)


def _submit(driver, wait, button: str) -> None:
    """Click the form button ``button`` and wait for the page it loads (no element of the old page is read)."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.ID, button).click()
    wait.until(staleness_of(page))


def _wait_file(folder: Path, suffix: str, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.name.endswith(suffix)]
        if done:
            return done[0]
        time.sleep(0.3)
    raise AssertionError(f"no {suffix} downloaded into {folder}")


def test_upload_audit_report_pdf_gate_and_sign_off(shared, driver, tmp_path):
    server, world = shared, shared.tmp
    write_csv(tmp_path / "data.csv", n=40)
    before = {p.name for p in server.runs.iterdir()} if server.runs.exists() else set()
    wait = WebDriverWait(driver, 120)
    driver.get(f"{server.url}/?token={server.token}")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Runs"
    driver.find_element(By.ID, "nav-new").click()
    driver.find_element(By.ID, "data-file").send_keys(str(tmp_path / "data.csv"))
    driver.find_element(By.ID, "model-pathsrc").click()
    driver.find_element(By.ID, "privacy-epsilon").click()
    _fill(driver, {"label": "browser <b>run</b>", "model-path": str(world / "models" / "tiny"), "epsilon": "8",
                   "shadows": "2", "epochs": "1", "batch-size": "10", "max-length": "8"})
    driver.find_element(By.ID, "start").click()
    # the live page follows the job by itself (status.json polling) until the report link shows
    wait.until(lambda d: d.find_element(By.ID, "status").text in ("done", "failed"))
    assert driver.find_element(By.ID, "status").text == "done", driver.find_element(By.ID, "log").text
    assert driver.find_element(By.TAG_NAME, "h1").text == "browser <b>run</b>"  # escaped, shown as typed
    assert "attack: loss" in driver.find_element(By.ID, "log").text
    driver.find_element(By.ID, "report-link").click()
    frame = driver.find_element(By.ID, "report-frame")
    assert frame.get_attribute("sandbox") == ""
    driver.switch_to.frame(frame)
    assert "membership" in driver.find_element(By.TAG_NAME, "body").text.lower()
    driver.switch_to.default_content()
    Select(driver.find_element(By.ID, "policy")).select_by_visible_text("default.toml")  # shipped in the package
    _submit(driver, wait, "gate")
    outcome = driver.find_element(By.ID, "gate-outcome").text
    assert outcome.startswith("default.toml: ") and outcome.split(": ")[1] in ("fail", "inconclusive")
    assert len(driver.find_elements(By.CSS_SELECTOR, "table.checks tbody tr")) >= 5
    policy = tmp_path / "lenient.toml"
    policy.write_text('name = "lenient"\nmax_auc = 0.99\n', encoding="utf-8")
    driver.find_element(By.ID, "policy-file").send_keys(str(policy))
    driver.find_element(By.ID, "write-verdict").click()
    _submit(driver, wait, "gate")
    assert driver.find_element(By.ID, "gate-outcome").text == "lenient.toml: pass (stored in the report)"
    _fill(driver, {"reviewer": "Ada Lovelace", "role": "DPO"})
    Select(driver.find_element(By.ID, "decision")).select_by_value("reject")
    _submit(driver, wait, "sign")
    assert driver.find_element(By.ID, "reviewer").get_attribute("value") == "Ada Lovelace"
    # the PDF last: the verdict and sign-off re-render only html and md (one Chromium render in the test)
    driver.find_element(By.ID, "pdf").click()
    pdf = _wait_file(tmp_path / "downloads", ".pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    (job,) = {p.name for p in server.runs.iterdir()} - before
    run_dir = server.runs / job / "run"
    sign_off = json.loads((run_dir / "audit.json").read_text())["sign_off"]
    assert sign_off["reviewer"] == "Ada Lovelace" and sign_off["decision"] == "reject"
    verdict = json.loads((run_dir / "audit.json").read_text())["verdict"]
    assert verdict["policy"] == "lenient" and verdict["passed"] is True
    assert "Ada Lovelace" in (run_dir / "report.html").read_text()  # the reports beside it were re-rendered
