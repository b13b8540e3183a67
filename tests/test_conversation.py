"""Intercom JSON -> messages: who is the customer, what is still unanswered."""

from __future__ import annotations

import pytest

from intercom_responder.core.conversation import (
    NOTE_MARKER,
    Conversation,
    ConversationFormatError,
)
from tests.builders import ADMIN_ID, T0, conversation, part


def test_source_is_the_first_message_and_html_becomes_text() -> None:
    conv = Conversation.from_api(conversation(source_body="<p>Hi &amp; hello</p><p>Second</p>"))
    assert conv.customer_name == "Ada Customer"
    assert [m.text for m in conv.messages] == ["Hi & hello\n\nSecond"]
    assert conv.unanswered_customer_messages()[0].part_id == "src-1"


def test_a_burst_after_the_last_teammate_comment_is_answered_together() -> None:
    conv = Conversation.from_api(
        conversation(
            part("1", "<p>ours</p>", author_type="admin", author_id=ADMIN_ID, at=T0 + 1),
            part("2", "<p>one</p>", at=T0 + 2),
            part("3", "<p>two</p>", author_type="lead", at=T0 + 3),
            part("4", "<p>team only</p>", author_type="admin", part_type="note", at=T0 + 4),
            part("5", None, author_type="admin", part_type="assignment", at=T0 + 5),
            part("6", "<p>three</p>", author_type="contact", at=T0 + 6),
        )
    )
    assert [m.part_id for m in conv.unanswered_customer_messages()] == ["2", "3", "6"]


def test_a_bot_or_teammate_comment_answers_the_customer() -> None:
    for author_type in ("admin", "bot", "team"):
        conv = Conversation.from_api(
            conversation(part("1", "<p>answer</p>", author_type=author_type, author_id="5"))
        )
        assert conv.unanswered_customer_messages() == []


def test_unknown_author_types_are_neither_customer_nor_us() -> None:
    conv = Conversation.from_api(conversation(part("1", "<p>?</p>", author_type="robot-x")))
    assert [m.part_id for m in conv.unanswered_customer_messages()] == ["src-1"]


def test_our_reply_and_our_marked_note_are_found_after_a_part() -> None:
    conv = Conversation.from_api(
        conversation(
            part("1", "<p>q</p>"),
            part(
                "2",
                f"<p>{NOTE_MARKER} draft</p>",
                author_type="admin",
                author_id=ADMIN_ID,
                part_type="note",
            ),
            part(
                "3",
                "<p>a teammate's own note</p>",
                author_type="admin",
                author_id=ADMIN_ID,
                part_type="note",
            ),
            part("4", "<p>reply</p>", author_type="admin", author_id=ADMIN_ID),
        )
    )
    note = conv.our_note_after("1", ADMIN_ID)
    assert note is not None and note.part_id == "2"
    reply = conv.our_reply_after("1", ADMIN_ID)
    assert reply is not None and reply.part_id == "4"
    assert conv.our_reply_after("4", ADMIN_ID) is None
    assert conv.our_reply_after("unknown", ADMIN_ID) is None


def test_attachments_are_named_in_the_text() -> None:
    conv = Conversation.from_api(
        conversation(
            part("1", "", attachments=[{"type": "upload", "name": "invoice.pdf", "url": "u"}])
        )
    )
    assert "invoice.pdf" in conv.messages[-1].text


def test_unassigned_is_zero_in_2_16_and_null_before() -> None:
    assert Conversation.from_api(conversation(admin_assignee_id=0)).admin_assignee_id is None
    assert Conversation.from_api(conversation(admin_assignee_id=None)).admin_assignee_id is None
    assert Conversation.from_api(conversation(admin_assignee_id=77)).admin_assignee_id == "77"


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"type": "conversation"},
        {"id": "1", "conversation_parts": {"conversation_parts": ["x"]}},
        {"id": "1", "created_at": "yesterday"},
    ],
)
def test_unexpected_json_is_a_clear_error(data: object) -> None:
    with pytest.raises(ConversationFormatError):
        Conversation.from_api(data)
