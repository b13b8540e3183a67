"""Which past exchanges become catalogue entries."""

from __future__ import annotations

from intercom_responder.core.conversation import Conversation
from intercom_responder.core.history import qa_pairs
from intercom_responder.defaults import MAX_LEARNED_ANSWER_CHARS
from tests.builders import ADMIN_ID, T0, conversation, part

TEAMMATE = "555"


def pairs_of(*parts: dict[str, object], source: str = "<p>Hello, I need help</p>"):  # type: ignore[no-untyped-def]
    return qa_pairs(Conversation.from_api(conversation(*parts, source_body=source)), ADMIN_ID)


def test_a_question_answered_by_a_teammate_is_a_pair_with_its_part_ids() -> None:
    result = pairs_of(
        part("1", "<p>How do I export?</p>", at=T0 + 1),
        part(
            "2",
            "<p>Use <b>Reports &gt; Export</b>.</p>",
            author_type="admin",
            author_id=TEAMMATE,
            at=T0 + 2,
        ),
    )
    [pair] = result.pairs
    assert pair.question == "Hello, I need help\n\nHow do I export?"
    assert pair.answer == "Use Reports > Export."
    assert pair.question_part_ids == ("src-1", "1") and pair.answer_part_ids == ("2",)
    assert pair.answered_at == T0 + 2 and pair.conversation_id == "100"


def test_several_exchanges_give_several_pairs_and_consecutive_answers_join() -> None:
    result = pairs_of(
        part("1", "<p>a1</p>", author_type="admin", author_id=TEAMMATE),
        part("2", "<p>a2</p>", author_type="admin", author_id=TEAMMATE),
        part("3", "<p>second question</p>"),
        part("4", "<p>internal</p>", author_type="admin", author_id=TEAMMATE, part_type="note"),
        part("5", None, author_type="admin", author_id=TEAMMATE, part_type="assignment"),
        part("6", "<p>b1</p>", author_type="admin", author_id=TEAMMATE),
    )
    assert [(p.question, p.answer) for p in result.pairs] == [
        ("Hello, I need help", "a1\n\na2"),
        ("second question", "b1"),
    ]


def test_our_own_ai_replies_and_bots_are_not_teammate_answers() -> None:
    result = pairs_of(
        part("1", "<p>AI answer</p>", author_type="admin", author_id=ADMIN_ID),
        part("2", "<p>thanks, and this?</p>"),
        part("3", "<p>bot says hi</p>", author_type="bot", author_id="b1"),
        part("4", "<p>late teammate comment</p>", author_type="admin", author_id=TEAMMATE),
    )
    assert result.pairs == []
    assert result.skipped["answered by a bot or the AI"] == 2


def test_empty_and_attachment_only_messages_are_skipped_and_counted() -> None:
    attachment = [{"type": "upload", "name": "screen.png", "url": "u"}]
    result = pairs_of(
        part("1", "<p>ok</p>", author_type="admin", author_id=TEAMMATE),
        part("2", "", attachments=attachment),
        part("3", "<p>see attached</p>", author_type="admin", author_id=TEAMMATE),
        part("4", "<p></p>"),
        part("5", "<p>answer to nothing</p>", author_type="admin", author_id=TEAMMATE),
        source="",
    )
    assert result.pairs == []
    assert result.skipped == {"empty question": 2, "attachments only": 1}


def test_huge_texts_are_cut_not_skipped() -> None:
    result = pairs_of(
        part("1", "<p>" + "word " * 5000 + "</p>", author_type="admin", author_id=TEAMMATE),
    )
    [pair] = result.pairs
    assert len(pair.answer) == MAX_LEARNED_ANSWER_CHARS and result.cut == 1
