"""A real browser for tests: headless Debian chromium through its chromedriver (Selenium).

Skips the calling test, saying what is missing, where chromium, chromedriver or selenium
is not installed (`apt-get install chromium chromium-driver`; scripts/test.sh does it).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def chrome(tmp_path: Path, window: tuple[int, int] = (1240, 860)):
    """Headless Debian chromium through its chromedriver, or a skip saying what is missing."""
    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)),
                   None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("no Chromium here: `apt-get install chromium chromium-driver` (Debian) "
                    "runs the browser test; scripts/test.sh does it where apt is available")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                    "(pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={window[0]},{window[1]}", "--hide-scrollbars",
                f"--user-data-dir={tmp_path}"):
        options.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not download anything
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def fetched_urls(driver) -> list[str]:
    """Every resource the page fetched (the Resource Timing entries)."""
    return driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
