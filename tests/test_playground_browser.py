"""The playground's page in a real browser: headless Chromium driven by Selenium.

The server is the real one (`build_playground`, as `python main.py playground` builds
it) on a free port, in front of the fake OpenAI-compatible model; the page is clicked
through as a newcomer would. One Chromium serves the whole module. Without Debian's
chromium and chromium-driver the tests skip, except in CI (`CI` set), where they fail.
Each main test leaves a screenshot of where it ended in its `tmp_path`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from intercom_responder.config import load_settings
from tests.browser import headless_chromium
from tests.fakes.openai_server import FakeOpenAI
from tests.playground_screenshot import (
    HEIGHT,
    WIDTH,
    PlaygroundPage,
    playground_env,
    png_size,
    scripted_replies,
    server_session,
)

TITLE = "Intercom responder · Playground"
PAYLOAD = "<img src=x onerror=\"document.title='pwned'\">"

PASSWORD_Q = "How do I reset my password?"
PASSWORD_A = "You can reset it under Settings > Security."
PASSWORD_WHY = "The help center documents the reset under Settings > Security."
REFUND_Q = "And how long does a refund take?"
REFUND_A = "Refunds reach your card within 5-7 business days."
INVOICE_Q = "Where can I download my invoice?"
INVOICE_A = "Under Billing > Invoices, with the PDF button next to each invoice."
REPLIES = {
    "password": (PASSWORD_A, 0.93, PASSWORD_WHY),
    "refund": (REFUND_A, 0.88, "The refund policy gives 5-7 business days."),
    "invoice": (INVOICE_A, 0.91, "Billing > Invoices is where invoices live."),
}


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with headless_chromium() as driver:
        yield driver


@pytest.fixture
def page(browser: WebDriver) -> PlaygroundPage:
    return PlaygroundPage(browser)


@pytest.fixture
def playground(model: FakeOpenAI, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start the real playground on a free port; returns its URL (with `?token=` if any)."""
    from intercom_responder.bootstrap import build_playground

    servers: list[Any] = []

    def start(*, learn: bool = False, token: str | None = None, **overrides: str) -> str:
        env = playground_env(model, tmp_path / "data", **overrides)
        settings = load_settings(env, need_intercom=False)
        server = build_playground(settings, host="127.0.0.1", port=0, learn=learn, token=token)
        server.start()
        servers.append(server)
        url: str = server.url
        return url

    yield start
    for server in servers:
        server.stop()


def shot(page: PlaygroundPage, tmp_path: Path, name: str) -> None:
    saved = page.screenshot(tmp_path / f"{name}.png")
    assert png_size(saved) == (WIDTH, HEIGHT)


def no_markup(page: PlaygroundPage) -> None:
    """Nothing the customer or the model wrote became an element."""
    tags = "img, script, b, i, iframe"
    assert page.driver.find_elements(By.CSS_SELECTOR, f'[data-test="transcript"] :is({tags})') == []
    assert page.driver.find_elements(By.CSS_SELECTOR, f"#details-body :is({tags})") == []
    assert page.driver.find_elements(By.TAG_NAME, "img") == []
    assert page.driver.title == TITLE


# --------------------------------------------------------------------------- tests


def test_manual_round_trip_with_an_edit_and_the_details(
    page: PlaygroundPage,
    playground: Callable[..., str],
    model: FakeOpenAI,
    tmp_path: Path,
) -> None:
    model.reply = scripted_replies(REPLIES)
    url = playground()
    page.open(url)
    assert page.driver.title == TITLE
    page.new_session()
    assert page.texts("tab") == ["Session 1"]

    page.send(PASSWORD_Q, mode="manual")
    assert page.texts("customer-message") == [PASSWORD_Q]
    assert page.all("answer") == []  # nothing went to the customer yet
    assert page.one("pending-text").text == PASSWORD_A
    # a waiting draft shows its details at once: the reviewer sees why before deciding
    assert page.detail("confidence") == "0.93"
    assert page.detail("decision") == "reply"
    assert page.detail("status") == "Waiting for your review"

    page.click("edit")
    edit = page.one("edit-text")
    assert edit.get_attribute("value") == PASSWORD_A
    edit.clear()
    page.click("edit-send")  # an empty edit is refused before it reaches the server
    assert page.visible("error")
    assert "empty" in page.one("error").text
    assert page.visible("pending")
    edited = "Go to Settings > Security and click Reset password; the link lasts an hour."
    page.one("edit-text").send_keys(edited)
    page.click("edit-send")

    assert not page.visible("error")
    assert page.all("pending") == []
    assert page.texts("answer") == [edited]
    transcript = page.one("transcript").text
    assert edited in transcript
    assert PASSWORD_A not in transcript
    assert "edited by you" in transcript
    session = server_session(url, page.current_session_id())
    assert session["messages"] == [
        {"role": "customer", "text": PASSWORD_Q},
        {"role": "answer", "text": edited},
    ]
    assert session["pending"] is None

    details = page.select("answer")
    assert page.detail("confidence") == "0.93"
    assert page.detail("reasoning") == PASSWORD_WHY
    assert page.detail("decision") == "reply"
    assert page.detail("rule") == "confident"
    assert "threshold" in page.detail("reason")
    assert page.detail("draft") == PASSWORD_A  # the model's draft, before the edit
    assert "Memory hits (0)" in details.text
    # the prompt the model saw carried the customer's question
    assert any(PASSWORD_Q in str(m.get("content")) for m in model.chat_requests[0]["messages"])

    page.send(REFUND_Q)  # still Manual: even a confident draft waits
    assert page.one("pending-text").text == REFUND_A
    page.click("approve")
    assert page.texts("answer") == [edited, REFUND_A]
    page.select("answer", 0)
    assert page.detail("reasoning") == PASSWORD_WHY
    shot(page, tmp_path, "manual-round-trip")


def test_automatic_sends_a_confident_reply_at_once(
    page: PlaygroundPage,
    playground: Callable[..., str],
    model: FakeOpenAI,
    tmp_path: Path,
) -> None:
    model.reply = scripted_replies(REPLIES)
    url = playground()
    page.open(url)
    page.new_session()
    assert page.one("mode-auto").get_attribute("aria-checked") == "true"  # the default

    page.send(PASSWORD_Q)
    assert page.texts("answer") == [PASSWORD_A]
    assert page.all("pending") == []
    assert page.all("handoff") == []
    assert "sent automatically" in page.one("transcript").text
    page.send(INVOICE_Q)
    assert page.texts("customer-message") == [PASSWORD_Q, INVOICE_Q]
    assert page.texts("answer") == [PASSWORD_A, INVOICE_A]
    assert [m["text"] for m in server_session(url, page.current_session_id())["messages"]] == [
        PASSWORD_Q,
        PASSWORD_A,
        INVOICE_Q,
        INVOICE_A,
    ]

    loaded = page.driver.execute_script(
        "return performance.getEntriesByType('resource').map((entry) => entry.name)"
    )
    assert loaded and all(name.startswith(url.split("?")[0]) for name in loaded)  # no CDN

    page.select("answer", 0)
    assert page.detail("decision") == "reply"
    assert page.detail("confidence") == "0.93"
    assert page.detail("status") == "Sent to the customer, sent automatically"
    assert "selected" in (page.all("answer")[0].get_attribute("class") or "").split()
    shot(page, tmp_path, "automatic")


def test_an_unsure_draft_waits_in_automatic_mode_and_reject_sends_nothing(
    page: PlaygroundPage,
    playground: Callable[..., str],
    model: FakeOpenAI,
    tmp_path: Path,
) -> None:
    model.set_json_reply("Maybe try turning it off and on again?", 0.42, "I am guessing.")
    url = playground()
    page.open(url)
    page.new_session()
    page.send("My export keeps failing with error E42.")

    assert page.all("answer") == []
    assert page.one("pending-text").text == "Maybe try turning it off and on again?"
    assert page.detail("decision") == "review"
    assert page.detail("rule") == "low_confidence"
    assert "below the threshold" in page.detail("reason")
    assert page.one("tab").find_elements(By.CSS_SELECTOR, ".dot")  # the tab says a draft waits

    page.click("reject")
    assert page.all("pending") == []
    assert page.all("answer") == []
    assert page.visible("rejected")
    assert page.visible("handed-off")
    assert not page.one("tab").find_elements(By.CSS_SELECTOR, ".dot")
    session = server_session(url, page.current_session_id())
    assert [m["role"] for m in session["messages"]] == ["customer"]
    assert session["pending"] is None
    page.select("rejected")
    assert page.detail("draft") == "Maybe try turning it off and on again?"
    shot(page, tmp_path, "rejected")


def test_a_hand_off_shows_its_reason_and_no_answer(
    page: PlaygroundPage,
    playground: Callable[..., str],
    model: FakeOpenAI,
    tmp_path: Path,
) -> None:
    # the model is sure of itself; the policy hands off all the same
    model.set_json_reply("We are sorry to hear that.", 0.97, "an apology")
    url = playground()
    page.open(url)

    page.new_session()
    page.send("This is unacceptable, I am calling my lawyer.")
    assert page.all("answer") == []
    assert page.all("pending") == []
    [line] = page.texts("handoff")
    assert line.startswith("Handed to the team: ")
    assert "lawyer" in line
    assert page.visible("handed-off")
    page.select("handoff")
    assert page.detail("decision") == "handoff"
    assert page.detail("rule") == "escalation_keyword"

    page.new_session()
    page.send("I want to talk to a real human", mode="manual")
    assert page.all("answer") == []
    assert page.all("pending") == []
    assert page.texts("handoff") == ["Handed to the team: the customer asked for a human"]
    page.select("handoff")
    assert page.detail("rule") == "human_requested"
    assert server_session(url, page.current_session_id())["messages"] == [
        {"role": "customer", "text": "I want to talk to a real human"}
    ]
    shot(page, tmp_path, "handoff")


def test_customer_and_model_text_is_shown_literally_never_as_html(
    page: PlaygroundPage,
    playground: Callable[..., str],
    model: FakeOpenAI,
    tmp_path: Path,
) -> None:
    model.set_json_reply(PAYLOAD, 0.95, f"reasoning {PAYLOAD}")
    page.open(playground())
    page.new_session()
    customer = "<b>bold?</b> <script>document.title='pwned'</script> How do I reset my password?"

    page.send(customer)
    assert page.texts("customer-message") == [customer]
    assert page.texts("answer") == [PAYLOAD]
    no_markup(page)

    page.send("<i>again</i>", mode="manual")
    assert page.one("pending-text").text == PAYLOAD
    assert page.detail("reasoning") == f"reasoning {PAYLOAD}"
    no_markup(page)
    page.click("edit")
    assert page.one("edit-text").get_attribute("value") == PAYLOAD
    page.click("edit-cancel")
    page.click("approve")
    assert page.texts("answer") == [PAYLOAD, PAYLOAD]
    assert page.texts("customer-message") == [customer, "<i>again</i>"]
    page.select("answer")
    assert page.detail("reasoning") == f"reasoning {PAYLOAD}"
    no_markup(page)
    shot(page, tmp_path, "escaping")


def test_two_sessions_in_two_tabs_keep_separate_transcripts(
    page: PlaygroundPage,
    playground: Callable[..., str],
    model: FakeOpenAI,
    tmp_path: Path,
) -> None:
    model.reply = scripted_replies(REPLIES)
    url = playground()
    page.open(url)

    page.new_session()
    page.send(PASSWORD_Q, mode="auto")
    first = page.current_session_id()
    page.new_session()
    assert page.all("customer-message") == []  # a new session starts empty
    page.send(INVOICE_Q, mode="manual")
    second = page.current_session_id()
    assert first != second
    assert page.texts("tab") == ["Session 1", "Session 2"]

    page.click("tab", 0)
    assert page.texts("customer-message") == [PASSWORD_Q]
    assert page.texts("answer") == [PASSWORD_A]
    assert page.all("pending") == []
    assert page.one("mode-auto").get_attribute("aria-checked") == "true"

    page.click("tab", 1)
    assert page.texts("customer-message") == [INVOICE_Q]
    assert page.all("answer") == []
    assert page.one("pending-text").text == INVOICE_A
    assert page.one("mode-manual").get_attribute("aria-checked") == "true"
    page.click("approve")
    assert page.texts("answer") == [INVOICE_A]

    page.click("tab", 0)
    assert page.texts("answer") == [PASSWORD_A]
    assert [m["text"] for m in server_session(url, first)["messages"]] == [PASSWORD_Q, PASSWORD_A]
    assert [m["text"] for m in server_session(url, second)["messages"]] == [INVOICE_Q, INVOICE_A]
    page.select("answer")
    shot(page, tmp_path, "two-sessions")


def test_a_model_failure_shows_the_error_line(
    page: PlaygroundPage,
    playground: Callable[..., str],
    model: FakeOpenAI,
    tmp_path: Path,
) -> None:
    model.reply = scripted_replies(REPLIES)
    page.open(playground())
    page.new_session()
    model.fail_next(500, message="the upstream model is down")

    page.send(PASSWORD_Q)
    assert page.visible("error")
    error = page.one("error").text
    assert error.startswith("The model failed")
    assert "failed: the model failed" not in error.lower()
    assert len(error) > len("The model failed: ")
    assert page.all("answer") == []
    assert page.all("pending") == []
    shot(page, tmp_path, "model-failure")
    page.click("error-dismiss")
    assert not page.visible("error")

    model.fail_next(502, message="bad gateway upstream")
    page.send("Hello? Are you there?")
    assert page.visible("error")
    assert len(page.all("unanswered")) == 2  # the server kept both messages
    page.send("Hello again?")  # the model is back: the error line goes
    assert not page.visible("error")
    assert page.all("unanswered") == []  # the answer covers all three
    assert len(page.all("answer")) == 1


def test_enter_sends_and_a_first_message_starts_a_session(
    page: PlaygroundPage,
    playground: Callable[..., str],
    model: FakeOpenAI,
) -> None:
    model.reply = scripted_replies(REPLIES)
    page.open(playground())
    assert page.all("tab") == []
    assert page.visible("empty")
    page.one("message-input").send_keys(PASSWORD_Q + Keys.ENTER)
    page.settle()
    assert page.texts("tab") == ["Session 1"]
    assert page.texts("customer-message") == [PASSWORD_Q]
    assert page.texts("answer") == [PASSWORD_A]
    assert page.one("message-input").get_attribute("value") == ""


def test_a_refused_message_comes_back_to_the_box(
    page: PlaygroundPage,
    playground: Callable[..., str],
    model: FakeOpenAI,
) -> None:
    page.open(playground())
    page.new_session()
    too_long = "x" * 10_001
    page.driver.execute_script(
        "document.querySelector('[data-test=\"message-input\"]').value = arguments[0]", too_long
    )
    page.click("send")
    assert page.visible("error")
    assert page.one("error").text.startswith("The request was refused: ")
    assert page.all("customer-message") == []  # the server did not keep it
    assert page.one("message-input").get_attribute("value") == too_long
    assert model.chat_requests == []


def test_the_token_goes_with_every_api_call(
    page: PlaygroundPage,
    playground: Callable[..., str],
    model: FakeOpenAI,
) -> None:
    model.reply = scripted_replies(REPLIES)
    url = playground(token="pg-token-0123456789")
    assert "?token=pg-token-0123456789" in url
    page.open(url)
    page.new_session()
    page.send(PASSWORD_Q)
    assert not page.visible("error")
    assert page.texts("answer") == [PASSWORD_A]
    session = server_session(url, page.current_session_id(), token="pg-token-0123456789")
    assert len(session["messages"]) == 2


def test_a_reload_brings_the_sessions_back(
    page: PlaygroundPage,
    playground: Callable[..., str],
    model: FakeOpenAI,
) -> None:
    model.reply = scripted_replies(REPLIES)
    page.open(playground())
    page.new_session()
    page.send(PASSWORD_Q)
    page.new_session()
    page.send(INVOICE_Q, mode="manual")

    page.driver.refresh()
    page.wait(lambda d: page.all("tab"), "no tabs after the reload")
    page.settle()
    assert page.texts("tab") == ["Session 1", "Session 2"]
    assert page.one("pending-text").text == INVOICE_A
    page.click("tab", 0)
    assert page.texts("answer") == [PASSWORD_A]
    page.select("answer")
    assert page.detail("confidence") == "0.93"


def test_a_learned_answer_comes_back_as_a_memory_hit(
    page: PlaygroundPage,
    playground: Callable[..., str],
    model: FakeOpenAI,
    tmp_path: Path,
) -> None:
    model.reply = scripted_replies(REPLIES)
    page.open(playground(learn=True, MEMORY_TOP_K="3"))
    page.new_session()
    page.send(PASSWORD_Q, mode="manual")
    page.click("approve")  # --learn: the approved answer goes into the memory

    page.new_session()
    page.send(PASSWORD_Q, mode="manual")
    details = page.select("pending-text")
    assert "Memory hits (1)" in details.text
    [hit] = page.all("memory-hit")
    assert PASSWORD_Q in hit.text
    assert PASSWORD_A in hit.text
    assert "source: playground" in hit.text
    assert float(page.one("memory-score").text) > 0.9
    shot(page, tmp_path, "memory")
