"""Retake the README's screenshots of the committed results site (docs/site-*.png) in headless Chromium.

Run after ``make report`` when the pages change visibly: ``.venv/bin/python scripts/site_screenshots.py``.
Uses the same browser, driver and flags as ``tests/test_site.py``.
"""
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_site import CHROMEDRIVER, CHROMIUM, FLAGS  # noqa: E402

SHOTS = {"site-index.png": "index.html", "site-dataset.png": "map-fashion-mnist.html",
         "site-table2.png": "efficiency-fashion-mnist.html"}


def main() -> int:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    site = ROOT / "results" / "site"
    with tempfile.TemporaryDirectory() as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS + [f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            for name, page in SHOTS.items():
                driver.get((site / page).as_uri())
                deadline = time.monotonic() + 30
                while driver.execute_script("return document.querySelectorAll('div.plot:not([data-ready])').length"):
                    if time.monotonic() > deadline:
                        print(f"error: {page}: plots not drawn after 30 s", file=sys.stderr)
                        return 1
                    time.sleep(0.1)
                driver.save_screenshot(str(ROOT / "docs" / name))
                print(f"docs/{name} <- results/site/{page}")
        finally:
            driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
