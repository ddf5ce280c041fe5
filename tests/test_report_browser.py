"""The HTML reports of evaluate and audit in a real browser (Debian chromium, Selenium):
every thumbnail shows, the page fetches nothing, the tables are there.

Set FASTFOOD_SCREENSHOT=path.png to keep the browser's screenshot of the evaluation report.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.browser import chrome, fetched_urls
from support.reports import made_evaluation

pytestmark = pytest.mark.slow


def _open(driver, path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(path.resolve().as_uri())
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete")


def _images_shown(driver) -> list[int]:
    """naturalWidth of every <img>: 0 where the browser refused or failed to show it."""
    return driver.execute_script(
        "return Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")


def test_evaluation_report_in_a_real_browser(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from fastfood.report.evaluation import write_report

    ev = made_evaluation(tmp_path / "images")
    page = write_report(ev, tmp_path / "report_val.html")
    driver = chrome(tmp_path / "profile")
    try:
        _open(driver, page)
        driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")  # lazy images
        widths = _images_shown(driver)
        assert len(widths) == min(24, ev.n) and all(w > 0 for w in widths), widths
        assert fetched_urls(driver) == []  # data: images are not fetches; nothing else is
        cards = driver.find_elements(By.CSS_SELECTOR, "#worst figure.card")
        assert [c.get_attribute("data-file") for c in cards[:3]] == \
            [ev.records.files[i] for i in ev.records.top_losses(3)]
        assert "true:" in cards[0].text and "%" in cards[0].text
        rows = driver.find_elements(By.CSS_SELECTOR, "#confusion tbody tr")
        assert len(rows) == len(ev.classes)
        per_class = driver.find_elements(By.CSS_SELECTOR, "#per-class tbody tr")
        assert [r.find_element(By.TAG_NAME, "td").text for r in per_class] == \
            list(ev.display_names)
        if os.environ.get("FASTFOOD_SCREENSHOT"):
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(os.environ["FASTFOOD_SCREENSHOT"])
    finally:
        driver.quit()


def test_audit_report_in_a_real_browser(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    from fastfood.audit.audit import audit
    from fastfood.audit.page import write_report
    from support.audit_data import planted_dataset

    root, planted = planted_dataset(tmp_path / "data")
    page = write_report(audit(root), tmp_path / "audit.html")
    driver = chrome(tmp_path / "profile")
    try:
        _open(driver, page)
        driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        widths = _images_shown(driver)
        assert widths and all(w > 0 for w in widths), widths
        assert fetched_urls(driver) == []
        leaks = driver.find_elements(By.CSS_SELECTOR, "#leaks .group")
        assert len(leaks) == len(planted["leaks"])
        assert driver.find_elements(By.CSS_SELECTOR, "#balance-table tbody tr")
    finally:
        driver.quit()
