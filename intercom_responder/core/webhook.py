"""Intercom's webhook notifications: is it really Intercom, and which conversation is it about.

A notification is a nudge, never the truth: only the topic, the conversation id and the
time are read from it. What the customer wrote is always read from the API, so a forged
or replayed body can at most make the daemon look at a conversation a second time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

SIGNATURE_PREFIX = "sha1="
#: Bodies larger than this are refused (413) before they are read into memory.
MAX_BODY_BYTES = 1024 * 1024


class Nudge(StrEnum):
    """What a notification asks of the daemon."""

    CUSTOMER_WROTE = "customer_wrote"  # look at the conversation now
    TEAMMATE_REPLIED = "teammate_replied"  # a pending review may have gone stale
    PING = "ping"  # Intercom checking the endpoint
    NOTHING = "nothing"  # a topic the daemon does not act on


TOPICS = {
    "conversation.user.created": Nudge.CUSTOMER_WROTE,
    "conversation.user.replied": Nudge.CUSTOMER_WROTE,
    "conversation.admin.replied": Nudge.TEAMMATE_REPLIED,
    "ping": Nudge.PING,
}


class NotificationError(ValueError):
    """The body is not a notification the daemon can use (answered 400)."""


@dataclass(frozen=True)
class Notification:
    topic: str
    nudge: Nudge
    conversation_id: str | None = None
    notification_id: str | None = None
    created_at: int | None = None  # when Intercom made the notification (unix seconds)


def signature_ok(body: bytes, header: str | None, secret: str) -> bool:
    """`X-Hub-Signature: sha1=<hex HMAC-SHA1 of the raw body>`, compared in constant time."""
    if not header or not header.startswith(SIGNATURE_PREFIX) or not secret:
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()
    given = header[len(SIGNATURE_PREFIX) :].strip().lower()
    return hmac.compare_digest(expected, given)


def parse_notification(body: bytes) -> Notification:
    try:
        document: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotificationError(f"the body is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise NotificationError("the body is not a JSON object")
    topic = document.get("topic")
    if not isinstance(topic, str) or not topic:
        raise NotificationError("the notification has no topic")
    nudge = TOPICS.get(topic, Nudge.NOTHING)
    conversation_id = _conversation_id(document)
    if nudge in (Nudge.CUSTOMER_WROTE, Nudge.TEAMMATE_REPLIED) and conversation_id is None:
        raise NotificationError(f"a {topic} notification without a conversation id")
    notification_id = document.get("id")
    return Notification(
        topic=topic,
        nudge=nudge,
        conversation_id=conversation_id,
        notification_id=str(notification_id) if notification_id else None,
        created_at=_whole_number(document.get("created_at")),
    )


def _conversation_id(document: dict[str, Any]) -> str | None:
    data = document.get("data")
    item = data.get("item") if isinstance(data, dict) else None
    if not isinstance(item, dict):
        return None
    value = item.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int) or value in ("", 0):
        return None
    text = str(value).strip()
    return text if text and len(text) <= 64 and text.isprintable() else None


def _whole_number(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)
