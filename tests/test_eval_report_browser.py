"""The evaluation report in a real browser: headless Chromium driven by Selenium.

The page is the one `write_report` writes for the sample of
`tests/eval_report_screenshot.py` (40 made-up support questions), opened from disk as a
reader opens it. One Chromium serves the whole module, started as the playground's
browser tests start it. Without Debian's chromium and chromium-driver the tests skip,
except in CI (`CI` set), where they fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from intercom_responder.adapters.eval_report import TITLE, write_report
from intercom_responder.core.evaluation import calibration, summarize, worst_sent
from tests.browser import headless_chromium
from tests.eval_report_screenshot import (
    TARGET,
    THRESHOLD,
    sample_results,
    take_screenshot,
)
from tests.playground_screenshot import HEIGHT, WIDTH, png_size

PAYLOAD = "<img src=x onerror=\"document.title='pwned'\"> <script>alert(1)</script>"


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with headless_chromium() as driver:
        yield driver


def severe(driver: WebDriver) -> list[str]:
    """The console errors since the last call (reading the log empties it)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_the_report_in_a_browser(browser: WebDriver, tmp_path: Path) -> None:
    results = sample_results()
    # a customer who writes markup: shown as text, never run
    results[0] = replace(results[0], question=PAYLOAD, judge_reason=PAYLOAD)
    summary = summarize(results, threshold=THRESHOLD, target=TARGET)
    worst = worst_sent(results)
    page = write_report(tmp_path / "report", summary, calibration(results), results, worst)[-1]
    judged = sum(result.judged for result in results)
    assert judged == 38 and len(worst) == 5

    severe(browser)
    browser.get(page.as_uri())
    assert browser.title == TITLE
    assert browser.find_element(By.TAG_NAME, "h1").text == TITLE

    chart = browser.find_element(By.CSS_SELECTOR, 'svg[data-test="chart"]')
    assert chart.is_displayed()
    assert len(chart.find_elements(By.TAG_NAME, "circle")) == judged
    assert len(chart.find_elements(By.CSS_SELECTOR, "circle.reply")) == sum(
        r.judged and r.action == "reply" for r in results
    )
    line = browser.find_element(By.CSS_SELECTOR, '[data-test="threshold-line"]')
    label = browser.find_element(By.CSS_SELECTOR, '[data-test="threshold-label"]')
    assert label.text == "CONFIDENCE_THRESHOLD 0.80"
    plot = browser.find_element(By.CSS_SELECTOR, "svg .plot").rect
    # the line stands at 0.80 of the confidence axis, as the browser lays it out
    assert abs(line.rect["x"] - (plot["x"] + 0.8 * plot["width"])) < 2
    assert line.rect["height"] == pytest.approx(plot["height"], abs=2)
    target = browser.find_element(By.CSS_SELECTOR, '[data-test="target-line"]').rect
    assert abs(target["y"] - (plot["y"] + (1 - TARGET) * plot["height"])) < 2
    assert target["width"] == pytest.approx(plot["width"], abs=2)

    rows = browser.find_elements(By.CSS_SELECTOR, 'table[data-test="worst"] tbody tr')
    assert len(rows) == 5
    assert rows[0].find_elements(By.TAG_NAME, "td")[4].text.startswith("0.00")
    pairs = browser.find_elements(By.CSS_SELECTOR, 'table[data-test="pairs"] tbody tr')
    assert len(pairs) == 40
    figures = browser.find_element(By.CSS_SELECTOR, '[data-test="summary"]').text
    assert "Sent alone at 0.80" in figures
    assert f"{summary.sent_share * 100:.0f} %" in figures

    # the payload is text: no element, no script run, the title untouched
    assert PAYLOAD in pairs[0].text
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main script") == []
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert severe(browser) == []

    saved = tmp_path / "eval-report.png"
    assert browser.save_screenshot(str(saved)), f"could not save {saved}"
    assert png_size(saved) == (WIDTH, HEIGHT)
    assert saved.stat().st_size > 20_000  # a page, not a blank


def test_the_readme_screenshot_can_be_taken_again(browser: WebDriver, tmp_path: Path) -> None:
    # `browser` only skips (or fails in CI) without Chromium: the script starts its own
    saved = take_screenshot(tmp_path / "docs" / "eval-report.png")
    width, height = png_size(saved)
    assert width == WIDTH
    assert height > HEIGHT  # down to the worst answers, below the first screen
    assert saved.stat().st_size > 50_000
