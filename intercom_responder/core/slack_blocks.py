"""Slack Block Kit for the review flow, without I/O.

Customer and model text is untrusted: every piece of it is escaped for mrkdwn (`&`,
`<`, `>`), so `<!channel>` or `<@U123>` in a message pings nobody, and it is cut to
Slack's limits after escaping without splitting an `&amp;`-style entity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SECTION_LIMIT = 3000  # characters of one section's text
INPUT_LIMIT = 3000  # characters of a plain_text_input's value

ACTION_BLOCK_ID = "review"
APPROVE, EDIT, REJECT = "approve", "edit", "reject"
EDIT_CALLBACK_ID = "review_edit"
EDIT_BLOCK_ID = "answer"
EDIT_ACTION_ID = "answer_input"

_USER_ID = re.compile(r"^[A-Z0-9]{2,32}$")


@dataclass(frozen=True)
class ReviewContent:
    """What a reviewer needs to decide, all as plain text."""

    conversation_id: str
    customer_name: str
    customer_text: str
    draft: str
    confidence: float
    reasoning: str
    reason: str
    conversation_url: str | None = None
    knowledge: tuple[str, ...] = ()  # the documentation the draft was given, one line each


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(escaped: str, limit: int, marker: str = " [...]") -> str:
    """Cut already-escaped mrkdwn to `limit` characters, never inside an entity."""
    if len(escaped) <= limit:
        return escaped
    end = max(limit - len(marker), 0)
    head = escaped[:end]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]  # the cut fell inside "&amp;", "&lt;" or "&gt;"
    return head + marker


def safe(text: str, limit: int) -> str:
    return cut(escape(text), limit)


def quoted(text: str, limit: int) -> str:
    """Escaped text as a mrkdwn block quote, within `limit` characters."""
    lines = escape(text.strip() or "(empty)").splitlines() or ["(empty)"]
    return cut("\n".join(f"&gt; {line}" if line else "&gt;" for line in lines), limit)


def mention(user_id: str) -> str:
    """A Slack mention for an id Slack gave us; anything else is shown escaped."""
    return f"<@{user_id}>" if _USER_ID.match(user_id) else escape(user_id)


def review_blocks(content: ReviewContent) -> list[dict[str, Any]]:
    return [*_summary_blocks(content), _actions(content.conversation_id)]


def decided_blocks(content: ReviewContent, outcome: str) -> list[dict[str, Any]]:
    """The message after a decision: the same facts, no buttons, the outcome last."""
    return [*_summary_blocks(content), _section(outcome)]


def fallback_text(content: ReviewContent) -> str:
    who = content.customer_name or "a customer"
    return safe(f"Review needed: reply to {who} (conversation {content.conversation_id})", 300)


def outcome_text(
    verb: str, *, user_id: str | None = None, at: float | None = None, detail: str = ""
) -> str:
    """E.g. "Approved by <@U1> at 2026-11-22 14:03 UTC: sent to the customer"."""
    parts = [f"*{escape(verb)}*"]
    if user_id:
        parts.append(f"by {mention(user_id)}")
    if at is not None:
        parts.append(f"at {datetime.fromtimestamp(at, UTC):%Y-%m-%d %H:%M} UTC")
    line = " ".join(parts)
    return f"{line}: {detail}" if detail else line


def edit_modal(conversation_id: str, review_ts: str, draft: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": EDIT_CALLBACK_ID,
        "private_metadata": f"{conversation_id}|{review_ts}",
        "title": {"type": "plain_text", "text": "Edit the reply"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": EDIT_BLOCK_ID,
                "label": {"type": "plain_text", "text": "Reply to the customer"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": EDIT_ACTION_ID,
                    "multiline": True,
                    "initial_value": draft[:INPUT_LIMIT],
                    "max_length": INPUT_LIMIT,
                },
            }
        ],
    }


def parse_modal_metadata(private_metadata: str) -> tuple[str, str] | None:
    conversation_id, sep, review_ts = private_metadata.partition("|")
    if not sep or not conversation_id.isdigit() or not review_ts:
        return None
    return conversation_id, review_ts


def _summary_blocks(content: ReviewContent) -> list[dict[str, Any]]:
    where = f"conversation {content.conversation_id}"
    if content.conversation_url:
        where = f"<{escape(content.conversation_url)}|{where}>"
    who = safe(content.customer_name or "The customer", 200)
    return [
        _section(f"*Review needed* for {where}: the AI is not sure enough to answer alone."),
        _section(f"*{who}* wrote:\n" + quoted(content.customer_text, SECTION_LIMIT - 250)),
        _section("*Draft reply*\n" + quoted(content.draft, SECTION_LIMIT - 20)),
        _section(
            cut(
                f"*Confidence* {content.confidence:.2f}   "
                f"*Why a review:* {escape(content.reason)}\n"
                f"*Model's reasoning:* {escape(content.reasoning or '-')}",
                SECTION_LIMIT,
            )
        ),
        *(
            [
                _section(
                    cut(
                        "*Documentation given to the draft*\n"
                        + "\n".join(escape(line) for line in content.knowledge),
                        SECTION_LIMIT,
                    )
                )
            ]
            if content.knowledge
            else []
        ),
    ]


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _actions(conversation_id: str) -> dict[str, Any]:
    def button(action_id: str, label: str, style: str | None = None) -> dict[str, Any]:
        element: dict[str, Any] = {
            "type": "button",
            "action_id": action_id,
            "text": {"type": "plain_text", "text": label},
            "value": conversation_id,
        }
        if style:
            element["style"] = style
        return element

    return {
        "type": "actions",
        "block_id": ACTION_BLOCK_ID,
        "elements": [
            button(APPROVE, "Approve and send", "primary"),
            button(EDIT, "Edit"),
            button(REJECT, "Reject", "danger"),
        ],
    }
