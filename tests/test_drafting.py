"""What a draft takes into account before anything is sent: the customer's language,
a question asked again after our answer, a frustrated customer, and the pictures they sent.

Against the fake Intercom and the fake model through the real daemon; rules that need no
model run with both responders (see `pytest_generate_tests`).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from intercom_responder.bootstrap import App
from intercom_responder.core.loops import repeats_the_question, similarity
from tests.conftest import ADMIN_ID, waiting_customer
from tests.fakes.intercom import FakeIntercom
from tests.fakes.openai_server import FakeOpenAI

MakeApp = Callable[..., App]

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def notes(intercom: FakeIntercom, cid: str) -> list[str]:
    return [p["body"] for p in intercom.parts(cid, author_id=ADMIN_ID, part_type="note")]


def drafts(model: FakeOpenAI) -> list[dict[str, Any]]:
    return [
        r
        for r in model.chat_requests
        if ((r.get("response_format") or {}).get("json_schema") or {}).get("name") != "grade_answer"
    ]


# --------------------------------------------------------------------------- languages


def test_a_german_message_is_answered_and_a_japanese_one_handed_off(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    german = waiting_customer(
        intercom,
        "<p>Hallo, wie kann ich mein Passwort ändern? Ich finde die Einstellung nicht.</p>",
    )
    japanese = waiting_customer(intercom, "<p>パスワードを変更するにはどうすればいいですか？</p>")
    app = make_app(REPLY_LANGUAGES="en,de")

    outcomes = {o.conversation_id: o for o in app.poller.poll_once().outcomes}

    assert outcomes[german].status == "replied"
    assert outcomes[japanese].status == "handed off"
    assert outcomes[japanese].decision is not None
    assert outcomes[japanese].decision.rule == "unsupported_language"
    [note] = notes(intercom, japanese)
    assert "Japanese (ja)" in note and "REPLY_LANGUAGES is en, de" in note
    assert len(model.chat_requests) <= 2  # the Japanese message cost no draft
    assert app.metrics is not None
    labels = {"reason": "unsupported_language"}
    assert app.metrics.value("intercom_responder_handoffs_total", labels) == 1


@pytest.mark.openai_only
def test_the_language_the_model_reads_decides_when_the_text_is_too_short_to_tell(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    model.set_json_reply("Bonjour ! Oui.", 0.95, "", language="fr", sentiment="neutral")
    cid = waiting_customer(intercom, "<p>Bonjour ?</p>")
    app = make_app(REPLY_LANGUAGES="en,de")

    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "handed off" and outcome.draft is not None
    assert outcome.draft.language == "fr"
    assert "French (fr)" in notes(intercom, cid)[0]
    system = drafts(model)[-1]["messages"][0]["content"]
    assert "language of the customer's newest message" in system


# --------------------------------------------------------------------------- loops


def test_a_question_asked_again_after_our_answer_goes_to_a_person(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = intercom.create_conversation(
        "<p>How do I reset my password?</p>", created_at=int(time.time()) - 600
    )
    intercom.admin_writes(cid, ADMIN_ID, "<p>Open Settings and press Reset.</p>")
    intercom.customer_writes(cid, "<p>I still cannot reset my password. How do I reset it?</p>")
    app = make_app()

    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "handed off" and outcome.decision is not None
    assert outcome.decision.rule == "repeated_question"
    assert "asked the same again" in notes(intercom, cid)[0]
    assert model.chat_requests == []  # a second answer from the same model would not help


def test_a_new_question_after_our_answer_is_answered(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = intercom.create_conversation(
        "<p>How do I reset my password?</p>", created_at=int(time.time()) - 600
    )
    intercom.admin_writes(cid, ADMIN_ID, "<p>Open Settings and press Reset.</p>")
    intercom.customer_writes(cid, "<p>Thanks, that worked! How do I change my e-mail?</p>")
    [outcome] = make_app().poller.poll_once().outcomes
    assert outcome.status == "replied"


def test_similarity_is_about_shared_words_in_any_language() -> None:
    assert similarity("How do I reset my password?", "how do i RESET my password") == 1.0
    assert similarity("How do I reset my password?", "Where is my invoice?") < 0.5
    assert similarity("パスワードを変更したい", "パスワードを変更したいです") > 0.5
    assert similarity("", "anything") == 0.0
    assert repeats_the_question([], [], "1") is False


@pytest.mark.openai_only
def test_a_frustrated_customer_goes_to_a_person(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    model.set_json_reply("Sorry to hear that.", 0.95, "", language="en", sentiment="frustrated")
    cid = waiting_customer(intercom, "<p>This is the third time I write. Nothing works!!</p>")

    [outcome] = make_app().poller.poll_once().outcomes

    assert outcome.status == "handed off" and outcome.decision is not None
    assert outcome.decision.rule == "customer_frustrated"
    assert "frustrated" in notes(intercom, cid)[0]


# --------------------------------------------------------------------------- pictures


@pytest.fixture
def files() -> Iterator[Any]:
    from tests.fakes.files import FakeFiles

    with FakeFiles() as fake:
        yield fake


@pytest.mark.openai_only
def test_images_reach_the_model_as_images_and_bad_ones_are_named(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, files: Any
) -> None:
    from tests.fakes.intercom import attachment

    good = files.add("/shots/error.png", PNG, "image/png")
    huge = files.add("/shots/huge.png", PNG + b"\0" * 30_000, "image/png")
    broken = files.add("/shots/missing.png", b"", "image/png", status=404)
    cid = waiting_customer(intercom, "<p>Hi</p>")
    intercom.customer_writes(
        cid,
        "<p>I get this error, see the screenshots</p>",
        attachments=[
            attachment(good, "error.png", "image/png", filesize=len(PNG)),
            attachment(huge, "huge.png", "image/png", filesize=30_070),
            attachment(broken, "missing.png", "image/png", filesize=100),
            attachment(good, "invoice.pdf", "application/pdf", filesize=100),
        ],
    )
    app = make_app(VISION="true", MAX_IMAGE_MB="0.02")

    app.poller.poll_once()

    [request] = drafts(model)
    content = request["messages"][-1]["content"]
    assert isinstance(content, list)
    images = [part for part in content if part["type"] == "image_url"]
    assert [part["image_url"]["url"] for part in images] == [
        "data:image/png;base64," + base64.b64encode(PNG).decode()
    ]
    text = content[0]["text"]
    assert "huge.png (over" in text and "missing.png (HTTP 404)" in text
    assert "[attachment: invoice.pdf]" in text  # named, not read
    assert "signature=" not in json.dumps(request)  # no URL for the model to fetch


def test_without_vision_images_are_only_named(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, files: Any
) -> None:
    from tests.fakes.intercom import attachment

    good = files.add("/shots/error.png", PNG, "image/png")
    cid = waiting_customer(intercom, "<p>Hi</p>")
    intercom.customer_writes(
        cid, "<p>See this</p>", attachments=[attachment(good, "error.png", "image/png")]
    )
    make_app().poller.poll_once()
    assert files.requests == []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The rules that need no model's word hold with both responders."""
    if "responder_kind" in metafunc.fixturenames:
        only_openai = metafunc.definition.get_closest_marker("openai_only") is not None
        metafunc.parametrize(
            "responder_kind", ["openai"] if only_openai else ["openai", "gpt-trainer"]
        )
