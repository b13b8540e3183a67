"""The README's screenshot of the playground, and the browser plumbing its tests share.

    python -m tests.playground_screenshot docs/playground.png

starts the fake model and the real playground (`build_playground`, as `python main.py
playground` builds it) with a local answer memory seeded with two verified answers, plays
a short conversation in headless Chromium (a password question answered automatically,
then a refund question whose draft waits in Manual mode with its details open) and saves
a 1280x900 PNG. It needs Debian's chromium and chromium-driver; Selenium never downloads
a browser or a driver here.

`tests/test_playground_browser.py` drives the page through `PlaygroundPage` and starts
Chromium with `start_chrome`, so the tests and the screenshot see the same page.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from tests.conftest import OPENAI_KEY
from tests.fakes.openai_server import FakeOpenAI

WIDTH, HEIGHT = 1280, 900
CHROME_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    f"--window-size={WIDTH},{HEIGHT}",
    "--no-proxy-server",
    "--no-first-run",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
)


def browser_paths() -> tuple[str | None, str | None]:
    """Debian's Chromium and its driver, as found on PATH."""
    return shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which(
        "chromedriver"
    )


def start_chrome(chromium: str, chromedriver: str) -> WebDriver:
    """Headless Chromium through the given chromedriver (so no Selenium Manager download)."""
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in CHROME_ARGS:
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        fit_viewport(driver)
    except Exception:
        driver.quit()
        raise
    return driver


def fit_viewport(driver: WebDriver) -> None:
    """Make the page itself 1280x900: `--window-size` counts the window's frame too."""
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    outer = driver.get_window_size()
    driver.set_window_size(
        outer["width"] + WIDTH - int(inner[0]), outer["height"] + HEIGHT - int(inner[1])
    )


def playground_env(model: FakeOpenAI, data_dir: Path, **overrides: str) -> dict[str, str]:
    """The playground's settings against the fake model; no memory unless asked for."""
    env = {
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_MODEL": "test-model",
        "OPENAI_MAX_RETRIES": "0",
        "EMBEDDING_DIMS": "64",
        "DATA_DIR": str(data_dir),
        "STATE_FILE": str(data_dir / "sessions.json"),
        "MEMORY_TOP_K": "0",
        "HEALTH_ADDR": "",
        "LOG_LEVEL": "WARNING",
    }
    env.update(overrides)
    return env


def newest_message(request: Mapping[str, Any]) -> str:
    """The customer's unanswered message(s) in a chat request the drafter sent, lowercased.

    The system prompt and the earlier conversation are left out, so a reply keyed on a
    word answers the question being asked now.
    """
    messages = request.get("messages") or []
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    content = users[-1].get("content") if users else ""
    text = content if isinstance(content, str) else json.dumps(content)
    return text.rpartition("newest message(s)")[2].lower()


def scripted_replies(
    replies: Mapping[str, tuple[str, float, str]],
    default: tuple[str, float, str] = ("Thanks for your message!", 0.9, "a friendly default"),
) -> Callable[[dict[str, Any]], str]:
    """A `FakeOpenAI.reply`: the first key word found in the newest message picks the reply."""

    def reply(request: dict[str, Any]) -> str:
        newest = newest_message(request)
        answer, confidence, reasoning = next(
            (value for word, value in replies.items() if word in newest), default
        )
        return json.dumps(
            {
                "answer": answer,
                "confidence": confidence,
                "reasoning": reasoning,
                "needs_human": False,
            }
        )

    return reply


class PlaygroundPage:
    """The playground page in a browser, by its `data-test` names; every action settles.

    Settling waits for `<html data-requests="0">`: the page counts its API calls in
    flight, so a test reads the page only once every answer it waits for has arrived.
    """

    def __init__(self, driver: WebDriver, *, timeout: float = 15.0) -> None:
        self.driver = driver
        self.timeout = timeout

    # -- finding --------------------------------------------------------------------

    def all(self, test: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, f'[data-test="{test}"]')

    def one(self, test: str) -> WebElement:
        found = self.all(test)
        assert len(found) == 1, f"expected one [data-test={test!r}], found {len(found)}"
        return found[0]

    def texts(self, test: str) -> list[str]:
        return [element.text for element in self.all(test)]

    def visible(self, test: str) -> bool:
        return any(element.is_displayed() for element in self.all(test))

    def wait(self, condition: Callable[[WebDriver], Any], message: str = "") -> Any:
        return WebDriverWait(self.driver, self.timeout, poll_frequency=0.05).until(
            condition, message
        )

    def settle(self) -> None:
        self.wait(
            lambda d: d.execute_script("return document.documentElement.dataset.requests") == "0",
            "the page still waits for the server",
        )

    # -- acting ---------------------------------------------------------------------

    def open(self, url: str) -> None:
        self.driver.get(url)
        self.wait(lambda d: self.all("new-session"), "the playground page did not load")
        self.settle()

    def click(self, test: str, index: int = 0) -> None:
        self.all(test)[index].click()
        self.settle()

    def new_session(self) -> None:
        before = len(self.all("tab"))
        self.click("new-session")
        self.wait(lambda d: len(self.all("tab")) == before + 1, "no new tab")

    def mode(self, mode: str) -> None:
        self.click(f"mode-{mode}")
        assert self.one(f"mode-{mode}").get_attribute("aria-checked") == "true"

    def send(self, text: str, *, mode: str | None = None) -> None:
        """Write `text` as the customer (no newline: Enter sends) and wait for the answer."""
        if mode is not None:
            self.mode(mode)
        box = self.one("message-input")
        box.clear()
        box.send_keys(text)
        self.click("send")

    def select(self, test: str, index: int = -1) -> WebElement:
        """Click an answer, a waiting draft or a hand-off and return its details."""
        self.all(test)[index].click()
        self.wait(lambda d: self.visible("details"), f"no details after clicking {test}")
        return self.one("details")

    def detail(self, test: str) -> str:
        return self.one(f"details-{test}").text

    def current_session_id(self) -> str:
        selected = [t for t in self.all("tab") if t.get_attribute("aria-selected") == "true"]
        assert len(selected) == 1
        session_id = selected[0].get_attribute("data-session")
        assert session_id
        return session_id

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        assert self.driver.save_screenshot(str(path)), f"could not save {path}"
        return path


def server_session(url: str, session_id: str, token: str | None = None) -> dict[str, Any]:
    """`GET /api/sessions/{id}` straight from the server: what the customer saw."""
    base = url.split("?", 1)[0]
    request = urllib.request.Request(f"{base}api/sessions/{session_id}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is no PNG"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


# --------------------------------------------------------------------------- the script

PASSWORD_Q = "Hi! How do I reset my password?"
PASSWORD_A = (
    "Hi! Open Settings > Security and choose Reset password. We'll email you a link "
    "that is valid for one hour."
)
REFUND_Q = "Thanks! I was also charged twice for my plan this month. Can I get a refund?"
REFUND_A = (
    "Sorry about the double charge! Duplicate charges are refunded in full: I've asked "
    "billing to refund the second one, and it should be back on your card within 5-7 "
    "business days."
)
REPLIES = {
    "password": (
        PASSWORD_A,
        0.94,
        "The verified answer on password resets covers this exactly.",
    ),
    "refund": (
        REFUND_A,
        0.66,
        "A verified answer says duplicate charges are refunded, but I cannot see the "
        "customer's invoices to confirm the second charge, and the refund has to be "
        "started by billing.",
    ),
}
MEMORY = (  # question, answer, source (as a Slack approval, an edit or a sync left it)
    (
        "How can I reset my password?",
        "Open Settings > Security and choose Reset password; the emailed link is valid "
        "for one hour.",
        "approved",
    ),
    (
        "I was charged twice this month, can I get a refund?",
        "Duplicate charges are refunded in full by billing within 5-7 business days.",
        "edited",
    ),
    (
        "Can I get a refund after I cancel my plan?",
        "Refunds are possible within 14 days of the charge; after that the plan runs to "
        "the end of the period.",
        "sync",
    ),
)


@contextmanager
def running_playground(model: FakeOpenAI, data_dir: Path, **overrides: str) -> Iterator[str]:
    from intercom_responder.bootstrap import build_playground
    from intercom_responder.config import load_settings

    settings = load_settings(playground_env(model, data_dir, **overrides), need_intercom=False)
    server = build_playground(settings, host="127.0.0.1", port=0)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def seed_memory(model: FakeOpenAI, data_dir: Path) -> None:
    """Verified answers in the local answer memory, as approved reviews would leave them."""
    from intercom_responder.bootstrap import open_answer_memory
    from intercom_responder.config import load_settings

    settings = load_settings(playground_env(model, data_dir), need_intercom=False)
    memory = open_answer_memory(settings)
    try:
        for question, answer, source in MEMORY:
            memory.add(question, answer, source=source, conversation_id="demo")
    finally:
        memory.close()


def take_screenshot(path: Path) -> Path:
    chromium, chromedriver = browser_paths()
    if not chromium or not chromedriver:
        raise SystemExit(
            "install Debian's chromium and chromium-driver "
            "(apt-get install chromium chromium-driver) to take the screenshot"
        )
    with FakeOpenAI(api_key=OPENAI_KEY) as model, tempfile.TemporaryDirectory() as tmp:
        model.reply = scripted_replies(REPLIES)
        data_dir = Path(tmp) / "data"
        seed_memory(model, data_dir)
        with running_playground(model, data_dir, MEMORY_TOP_K="3") as url:
            driver = start_chrome(chromium, chromedriver)
            try:
                page = PlaygroundPage(driver, timeout=60)
                page.open(url)
                page.new_session()
                page.send(PASSWORD_Q, mode="auto")
                page.send(REFUND_Q, mode="manual")
                page.wait(lambda d: page.visible("pending"), "the refund draft does not wait")
                page.select("pending-text")
                driver.execute_script("document.activeElement.blur()")  # no focus rings
                return page.screenshot(path)
            finally:
                driver.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.playground_screenshot", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("path", type=Path, help="where to save the PNG, e.g. docs/playground.png")
    args = parser.parse_args(argv)
    saved = take_screenshot(args.path)
    width, height = png_size(saved)
    print(f"saved {saved} ({width}x{height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
