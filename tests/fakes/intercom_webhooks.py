"""Send webhook notifications the way Intercom does, to test the daemon's receiver.

Intercom POSTs each notification as a JSON body to the subscription's URL and signs it
with the app's client secret: `X-Hub-Signature: sha1=<hex HMAC-SHA1 of the raw body>`.
The body is a `notification_event` whose `data.item` is the object the topic is about
(a whole conversation for the `conversation.*` topics, a small `ping` item for `ping`).
A delivery that fails is sent again later with the same `id` and a higher
`delivery_attempts`, so receivers see the same notification more than once.

    body = notification("conversation.user.replied", "1001")
    response = send(url, "conversation.user.replied", "1001", SECRET)  # a fresh one
    response = send(url, "", None, SECRET, body=body)  # exactly this one (e.g. again)
    response = send(url, "", None, SECRET, body=b"not json")  # signed, whatever it is
    response = send(url, "ping", None, SECRET, signature="sha1=" + "0" * 40)  # forged
    response = send(url, "ping", None, SECRET, signature="")  # no X-Hub-Signature at all
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import requests

__all__ = ["APP_ID", "USER_AGENT", "encode", "notification", "send", "sign"]

APP_ID = "abc123"
#: What Intercom's webhook deliveries call themselves.
USER_AGENT = "intercom-parrot-service-client/1.0"
CUSTOMER = {
    "type": "user",
    "id": "6762f1261bb69f9f00000001",
    "name": "Customer",
    "email": "customer@customers.example.com",
}
TEAMMATE = {"type": "admin", "id": "555", "name": "Tina Teammate", "email": "tina@example.com"}
_ADMIN_PART_TYPES = {  # the part a teammate's action adds, by topic
    "conversation.admin.closed": "close",
    "conversation.admin.opened": "open",
    "conversation.admin.snoozed": "snoozed",
    "conversation.admin.assigned": "assignment",
    "conversation.admin.noted": "note",
}


def sign(body: bytes, secret: str) -> str:
    """The `X-Hub-Signature` header value Intercom sends with `body`."""
    return "sha1=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


def encode(body: dict[str, Any]) -> bytes:
    """A notification's bytes on the wire (compact JSON, UTF-8)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def notification(topic: str, conversation_id: str | None, **extra: Any) -> dict[str, Any]:
    """A realistic notification body for `topic` about conversation `conversation_id`.

    For a `conversation.*` topic, `data.item` is the conversation as Intercom sends it
    (its `id` left out when `conversation_id` is None: a notification the receiver must
    refuse). `ping` carries Intercom's ping item; any other topic a small item of its kind.

    `extra`: `item=` (a dict) is merged into `data.item` (e.g. a customer text that must
    not be used); any other keyword replaces that top-level field (`id`, `created_at`,
    `delivery_attempts`, `first_sent_at`, `app_id`, ...).
    """
    now = int(time.time())
    item_overrides = extra.pop("item", None) or {}
    if topic == "ping":
        item: dict[str, Any] = {"type": "ping", "message": "something something interzen"}
    elif topic.startswith("conversation"):
        item = _conversation_item(topic, conversation_id, now)
    else:
        kind = topic.split(".", 1)[0]
        item = {"type": kind, "id": conversation_id or uuid.uuid4().hex[:24]}
    item.update(copy.deepcopy(item_overrides))
    notification_id = f"notif_{uuid.uuid4()}"
    body: dict[str, Any] = {
        "type": "notification_event",
        "app_id": APP_ID,
        "data": {"type": "notification_event_data", "item": item},
        "links": {},
        "id": notification_id,
        "topic": topic,
        "delivery_status": "pending",
        "delivery_attempts": 1,
        "delivered_at": 0,
        "first_sent_at": now,
        "created_at": now,
        "self": None,
    }
    body.update(extra)
    return body


def _conversation_item(topic: str, conversation_id: str | None, now: int) -> dict[str, Any]:
    customer_text = "<p>How do I reset my password?</p>"
    parts: list[dict[str, Any]] = []
    if topic == "conversation.user.replied":
        parts.append(_part("comment", "<p>Any news?</p>", CUSTOMER, now))
    elif topic == "conversation.admin.replied":
        parts.append(_part("comment", "<p>Let me check that for you.</p>", TEAMMATE, now))
    elif topic in _ADMIN_PART_TYPES:
        parts.append(_part(_ADMIN_PART_TYPES[topic], None, TEAMMATE, now))
    item: dict[str, Any] = {
        "type": "conversation",
        "created_at": now - 60,
        "updated_at": now,
        "waiting_since": None if topic == "conversation.admin.replied" else now,
        "snoozed_until": None,
        "source": {
            "type": "conversation",
            "id": "403918330",
            "delivered_as": "customer_initiated",
            "subject": "",
            "body": customer_text,
            "author": dict(CUSTOMER),
            "attachments": [],
            "url": None,
            "redacted": False,
        },
        "contacts": {
            "type": "contact.list",
            "contacts": [{"type": "contact", "id": CUSTOMER["id"], "external_id": None}],
        },
        "first_contact_reply": {"created_at": now - 60, "type": "conversation", "url": None},
        "admin_assignee_id": None,
        "team_assignee_id": None,
        "open": True,
        "state": "open",
        "read": False,
        "tags": {"type": "tag.list", "tags": []},
        "priority": "not_priority",
        "custom_attributes": {},
        "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": parts,
            "total_count": len(parts),
        },
    }
    if conversation_id is not None:
        item = {"type": "conversation", "id": str(conversation_id), **item}
    return item


def _part(part_type: str, body: str | None, author: dict[str, Any], at: int) -> dict[str, Any]:
    return {
        "type": "conversation_part",
        "id": str(5_000_000 + at % 1_000_000),
        "part_type": part_type,
        "body": body,
        "created_at": at,
        "updated_at": at,
        "notified_at": at,
        "assigned_to": None,
        "author": dict(author),
        "attachments": [],
        "external_id": None,
        "redacted": False,
    }


def send(
    url: str,
    topic: str,
    conversation_id: str | None,
    secret: str,
    *,
    body: bytes | dict[str, Any] | None = None,
    signature: str | None = None,
    session: requests.Session | None = None,
    timeout: float = 10.0,
) -> requests.Response:
    """POST one notification to `url` as Intercom does; returns the receiver's answer.

    `body`: the notification to send instead of a fresh `notification(topic,
    conversation_id)` (a dict is encoded as Intercom does, bytes are sent as they are);
    either way the raw bytes are what is signed. `signature`: the header value to send
    instead of the right one; "" sends no `X-Hub-Signature` header at all.
    """
    if body is None:
        body = notification(topic, conversation_id)
    raw = encode(body) if isinstance(body, dict) else body
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Accept": "*/*",
    }
    header = sign(raw, secret) if signature is None else signature
    if header:
        headers["X-Hub-Signature"] = header
    poster = session.post if session is not None else requests.post
    return poster(url, data=raw, headers=headers, timeout=timeout)
