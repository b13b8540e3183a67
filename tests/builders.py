"""Intercom conversation JSON for pure unit tests (the fake server builds its own)."""

from __future__ import annotations

from typing import Any

ADMIN_ID = "991"
T0 = 1_700_000_000


def part(
    part_id: str,
    body: str | None,
    *,
    author_type: str = "user",
    author_id: str = "c1",
    part_type: str = "comment",
    at: int = T0,
    attachments: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "type": "conversation_part",
        "id": part_id,
        "part_type": part_type,
        "body": body,
        "created_at": at,
        "updated_at": at,
        "author": {"type": author_type, "id": author_id, "name": "Someone", "email": None},
        "attachments": attachments or [],
    }


def conversation(
    *parts: dict[str, Any],
    source_body: str = "<p>Hello, I need help</p>",
    source_author: str = "user",
    state: str = "open",
    admin_assignee_id: int | None = 0,
    created_at: int = T0,
    updated_at: int | None = None,
    conversation_id: str = "100",
) -> dict[str, Any]:
    last = max([created_at, *(p["created_at"] for p in parts)])
    return {
        "type": "conversation",
        "id": conversation_id,
        "created_at": created_at,
        "updated_at": updated_at or last,
        "waiting_since": None,
        "state": state,
        "open": state != "closed",
        "admin_assignee_id": admin_assignee_id,
        "team_assignee_id": 0,
        "source": {
            "type": "conversation",
            "id": "src-1",
            "body": source_body,
            "subject": "",
            "author": {"type": source_author, "id": "c1", "name": "Ada Customer", "email": "a@x"},
            "attachments": [],
        },
        "conversation_parts": {
            "type": "conversation_part.list",
            "conversation_parts": list(parts),
            "total_count": len(parts),
        },
    }
