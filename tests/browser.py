"""Headless Chromium for the browser tests (the playground, the eval report).

Debian's chromium and chromium-driver; without them the tests skip, naming what to
install, except in CI (`CI` set), where they fail: there they must never be skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.playground_screenshot import browser_paths, start_chrome

MISSING = (
    "install Debian's chromium and chromium-driver "
    "(apt-get install chromium chromium-driver) to run the browser tests"
)


@contextmanager
def headless_chromium() -> Iterator[WebDriver]:
    chromium, chromedriver = browser_paths()
    if not chromium or not chromedriver:
        missing = ", ".join(
            package
            for package, found in (("chromium", chromium), ("chromium-driver", chromedriver))
            if not found
        )
        if os.environ.get("CI"):
            pytest.fail(
                f"the browser tests need Debian's packages chromium and chromium-driver "
                f"(missing: {missing}); install them with apt-get install chromium "
                "chromium-driver",
                pytrace=False,
            )
        pytest.skip(MISSING)
    driver = start_chrome(chromium, chromedriver)
    try:
        yield driver
    finally:
        driver.quit()
