"""The report in a real browser: Debian's Chromium driven headlessly by selenium.

Uses only the system browser (/usr/bin/chromium + /usr/bin/chromedriver from
Debian's ``chromium`` and ``chromium-driver`` packages), never one downloaded
by a test tool. Outside CI the test is skipped when they are missing; in CI
(``CI`` set) they must be there, so their absence fails the test.

Set ``REPORT_SCREENSHOT=/some/path.png`` to keep a screenshot for a person to look at.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
_MISSING = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
_IN_CI = bool(os.environ.get("CI"))

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
except ImportError:  # pragma: no cover - depends on the environment
    webdriver = None
    _MISSING.append("the Python package 'selenium'")

if _MISSING and not _IN_CI:
    pytest.skip(f"{', '.join(_MISSING)} not installed (apt-get install chromium chromium-driver; "
                f"pip install selenium)", allow_module_level=True)

from forecast.report import write_report


def _sibling(name: str):
    """The context builders of tests/test_report.py, whatever pytest's import mode."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_report_browser_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHROME_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--disable-quic", "--window-size=1280,2200", "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


@pytest.fixture
def driver():
    if _MISSING:  # only reached in CI, where a missing browser is a broken set-up, not a reason to skip
        pytest.fail(f"CI is set but {', '.join(_MISSING)} is missing: .ci/run must install Debian's "
                    f"'chromium' and 'chromium-driver' packages and the Python package 'selenium'.",
                    pytrace=False)
    profile = tempfile.mkdtemp(prefix="report-chrome-")
    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for arg in CHROME_ARGS:
        opts.add_argument(arg)
    opts.add_argument(f"--user-data-dir={profile}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # selenium-manager must not fetch anything: the driver path is given explicitly
    drv = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    drv.set_page_load_timeout(60)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_report_renders_in_chromium(driver, tmp_path):
    helpers = _sibling("test_report")
    ctx = helpers.full_context(n_series=12, png=helpers.make_png(10, 5, dpi=100))
    page = write_report(ctx, tmp_path / "report.html")

    driver.get(page.resolve().as_uri())

    assert driver.title == "Border incident forecast (SIMULATED DATA)"
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt]);")
    assert len(images) == len(ctx["figures"])
    for complete, width, alt in images:
        assert complete and width > 0, (alt, width)
    _assert_sharp(driver.execute_script(SIZES_JS))
    # hostile names arrive as text, never as elements
    assert driver.execute_script("return document.scripts.length;") == 0
    provinces = driver.execute_script(
        "return Array.from(document.querySelectorAll('#summary td:nth-child(2)')).map(td => td.textContent);")
    assert "<script>alert(1)</script>" in provinces
    # table of contents sticks to the top while scrolling
    top = driver.execute_script(
        "document.getElementById('data').scrollIntoView();"
        "return document.querySelector('nav.toc').getBoundingClientRect().top;")
    assert abs(top) < 1
    driver.execute_script("window.scrollTo(0, 0);")

    severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    assert severe == [], severe

    # a full-page screenshot: grow the window to the document's height (capped)
    height = driver.execute_script("return document.documentElement.scrollHeight;")
    driver.set_window_size(1280, min(int(height), 16000))
    shot = tmp_path / "report.png"
    assert driver.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    keep = os.environ.get("REPORT_SCREENSHOT")
    if keep:
        Path(keep).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, keep)


SIZES_JS = ("return Array.from(document.images).map(i => [i.alt, i.naturalWidth, i.naturalHeight, "
            "i.clientWidth, i.clientHeight]);")


def _assert_sharp(images):
    """Every image has >= 1.5 image pixels per CSS pixel and is never shown wider than its pixels."""
    assert images
    for alt, nw, nh, cw, ch in images:
        assert nw > 0 and cw > 0, (alt, nw, cw)
        assert cw <= nw and nw >= 1.5 * cw, (alt, nw, cw)
        assert abs(ch / cw - nh / nw) < 0.02, (alt, nw, nh, cw, ch)  # aspect kept (height: auto)


@pytest.mark.parametrize("window", [1280, 480])
def test_every_figure_is_shown_at_most_at_its_pixels_over_1_5(driver, tmp_path, window):
    """Figures narrower and wider than the column, in a wide and a phone-sized window."""
    helpers = _sibling("test_report")
    ctx = helpers.full_context(n_series=4)
    sizes = {"narrow": (4.0, 3.0, 100), "wide": (12.0, 5.0, 150), "huge": (20.0, 6.0, 200), "effects": (5.8, 7, 150)}
    ctx["figures"] = [{"id": fid, "title": fid, "caption": "", "png": helpers.make_png(w, h, dpi=d)}
                      for fid, (w, h, d) in sizes.items()]
    page = write_report(ctx, tmp_path / "report.html")
    driver.set_window_size(window, 2200)
    driver.get(page.resolve().as_uri())
    images = driver.execute_script(SIZES_JS)
    assert sorted(i[0] for i in images) == sorted(sizes)
    _assert_sharp(images)
    shown = {alt: cw for alt, _, _, cw, _ in images}
    column = driver.execute_script("return document.querySelector('main').clientWidth;")
    assert shown["huge"] < column  # capped by the column, not stretched or overflowing
    if window == 1280:  # a small figure keeps its own size (400 px / 1.5), minus its 1 px border
        assert shown["narrow"] == 400 // 1.5 - 2


def test_minimal_report_renders_in_chromium(driver, tmp_path):
    page = write_report({"title": "Only a title"}, tmp_path / "minimal.html")
    driver.get(page.resolve().as_uri())
    assert driver.title == "Only a title"
    assert [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"] == []
