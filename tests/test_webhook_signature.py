"""Reading a notification: is it Intercom's, and which conversation is it about (pure)."""

from __future__ import annotations

import json

import pytest

from intercom_responder.core.webhook import (
    Notification,
    NotificationError,
    Nudge,
    parse_notification,
    signature_ok,
)
from tests.fakes.intercom_webhooks import sign

SECRET = "client-secret-0123"
BODY = json.dumps(
    {
        "type": "notification_event",
        "topic": "conversation.user.replied",
        "id": "notif_1",
        "created_at": 1_763_773_200,
        "data": {"item": {"type": "conversation", "id": "215470000001"}},
    }
).encode()


def header(body: bytes, secret: str = SECRET) -> str:
    return sign(body, secret)


def test_intercoms_signature_is_accepted_and_anything_else_refused() -> None:
    assert signature_ok(BODY, header(BODY), SECRET)
    assert signature_ok(BODY, header(BODY).upper().replace("SHA1=", "sha1="), SECRET)
    assert not signature_ok(BODY + b" ", header(BODY), SECRET)  # the body changed
    assert not signature_ok(BODY, header(BODY, "another-secret"), SECRET)
    assert not signature_ok(BODY, header(BODY).removeprefix("sha1="), SECRET)
    assert not signature_ok(BODY, None, SECRET)
    assert not signature_ok(BODY, "", SECRET)
    assert not signature_ok(BODY, header(BODY, ""), "")  # no secret: nothing is trusted


def test_a_notification_gives_the_topic_the_conversation_and_the_time_only() -> None:
    assert parse_notification(BODY) == Notification(
        topic="conversation.user.replied",
        nudge=Nudge.CUSTOMER_WROTE,
        conversation_id="215470000001",
        notification_id="notif_1",
        created_at=1_763_773_200,
    )


@pytest.mark.parametrize(
    ("topic", "nudge"),
    [
        ("conversation.user.created", Nudge.CUSTOMER_WROTE),
        ("conversation.admin.replied", Nudge.TEAMMATE_REPLIED),
        ("ping", Nudge.PING),
        ("contact.created", Nudge.NOTHING),
    ],
)
def test_topics(topic: str, nudge: Nudge) -> None:
    body = json.dumps({"topic": topic, "data": {"item": {"id": 42}}}).encode()
    assert parse_notification(body).nudge is nudge


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"data": {}}', "no topic"),
        (b'{"topic": "conversation.user.replied", "data": {"item": {}}}', "conversation id"),
        (b'{"topic": "conversation.user.replied", "data": {"item": {"id": ""}}}', "id"),
        (b'{"topic": "conversation.user.replied", "data": {"item": {"id": true}}}', "id"),
        (b'{"topic": "conversation.user.replied", "data": "x"}', "conversation id"),
    ],
)
def test_a_body_that_is_no_usable_notification_is_refused(body: bytes, why: str) -> None:
    with pytest.raises(NotificationError, match=why):
        parse_notification(body)


def test_a_ping_needs_no_conversation() -> None:
    ping = parse_notification(b'{"topic": "ping", "data": {"item": {"type": "ping"}}}')
    assert ping.nudge is Nudge.PING and ping.conversation_id is None
