"""Screenshots of the results site (the README's ``docs/site-*.png``), taken in headless Chromium.

``python -m protocols.site --screenshots docs`` (``make screenshots``) builds the site and retakes
every picture in :data:`SHOTS` from it, so the README shows the pages as they are. The browser is
Debian's ``chromium`` with its ``chromedriver`` (``scripts/ensure-chromium.sh``), given explicitly so
Selenium Manager never reaches for the network; ``HASHBENCH_CHROMIUM`` and ``HASHBENCH_CHROMEDRIVER``
point elsewhere. ``tests/test_site.py`` drives the same browser with the same flags.
"""
from __future__ import annotations

import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from common.files import atomic_write_bytes

CHROMIUM = os.environ.get("HASHBENCH_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("HASHBENCH_CHROMEDRIVER", "/usr/bin/chromedriver")
#: headless, no network of its own, one window size (the screenshots' and the browser test's)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--window-size=1400,1000"]
#: picture -> (page, the element scrolled to the top, or None for the top of the page); ``{map}`` and
#: ``{efficiency}`` are the first dataset's pages (Fashion-MNIST's where it has records)
SHOTS = {
    "site-index.png": ("index.html", None),
    "site-leaderboard.png": ("leaderboard.html", None),
    "site-dataset.png": ("{map}", None),
    "site-plots.png": ("{map}", "plot-map"),
    "site-table2.png": ("{efficiency}", None),
    "site-glossary.png": ("glossary.html", None),
}


def browser_missing() -> str | None:
    """Why no browser can be started here (one line), or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install -e '.[test]')"
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        return (f"no {CHROMIUM} or {CHROMEDRIVER}: run scripts/ensure-chromium.sh (apt-get install chromium "
                "chromium-driver)")
    return None


@contextmanager
def chromium(profile=None, log_console: bool = False):
    """A headless Chromium session (:data:`FLAGS`), its profile in ``profile`` or a temporary folder."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory() as temporary:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS + [f"--user-data-dir={profile or temporary}"]:
            options.add_argument(flag)
        if log_console:
            options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(60)
        try:
            yield driver
        finally:
            driver.quit()


def wait_for_plots(driver, timeout: float = 30) -> tuple[int, int]:
    """Wait until the page is loaded and every plot drawn; ``(plots, drawn)`` (fewer drawn: timed out)."""
    deadline = time.monotonic() + timeout
    script = ("return [document.querySelectorAll('div.plot').length, "
              "document.querySelectorAll('div.plot[data-ready]').length, document.readyState]")
    while True:
        plots, ready, state = driver.execute_script(script)
        if (state == "complete" and ready == plots) or time.monotonic() > deadline:
            return plots, ready
        time.sleep(0.1)


def take_screenshots(site, folder, shots=None) -> list[Path]:
    """Retake :data:`SHOTS` of the built ``site`` into ``folder``; a page the site lacks is skipped."""
    from protocols.runner import UsageError

    site, folder = Path(site).resolve(), Path(folder)  # a file URI needs an absolute path
    missing = browser_missing()
    if missing:
        raise UsageError(f"cannot take screenshots: {missing}")
    pages = {"map": _first(site, "map-"), "efficiency": _first(site, "efficiency-")}
    written = []
    with chromium() as driver:
        for name, (page, element) in (shots or SHOTS).items():
            page = page.format(**pages) if "{" in page else page
            if not page or not (site / page).is_file():
                continue
            driver.get((site / page).as_uri())
            plots, ready = wait_for_plots(driver)
            if ready < plots:
                raise UsageError(f"{page}: {ready} of {plots} plots drawn after 30 s; no screenshot taken")
            if element:
                driver.execute_script("var e = document.getElementById(arguments[0]); if (e) e.scrollIntoView();",
                                      element)
                time.sleep(0.3)
            written.append(atomic_write_bytes(folder / name, driver.get_screenshot_as_png()))
    return written


def _first(site: Path, prefix: str) -> str:
    """The page of Fashion-MNIST with ``prefix`` where there is one, else the first such page."""
    names = sorted(p.name for p in site.glob(prefix + "*.html"))
    preferred = f"{prefix}fashion-mnist.html"
    return preferred if preferred in names else (names[0] if names else "")
