"""Conversation records: the named transitions, and reading and writing the state file's entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intercom_responder.core.conversation import Conversation, Message
from intercom_responder.core.records import (
    ConversationRecord,
    PendingReview,
    PostKind,
    State,
)
from tests.builders import conversation, part

REPO = Path(__file__).resolve().parent.parent


def read() -> Conversation:
    data = conversation(part("11", "<p>and another thing</p>"), updated_at=1_700_000_100)
    return Conversation.from_api(data)


def newest(of: Conversation) -> Message:
    return of.messages[-1]


def review(**changes: object) -> PendingReview:
    values: dict[str, object] = {
        "customer_part_id": "11",
        "customer_name": "Ada",
        "question": "Can I change the billing e-mail?",
        "draft": "Yes: Settings > Billing.",
        "confidence": 0.55,
        "reasoning": "close to a known answer",
        "reason": "confidence 0.55 is below the threshold 0.80",
        "url": None,
        "requested_at": 100.0,
        "expires_at": 7300.0,
    }
    values.update(changes)
    return PendingReview(**values)  # type: ignore[arg-type]


def test_records_are_immutable_and_transitions_return_the_next_one() -> None:
    record = ConversationRecord.new("7")
    drafting = record.drafting(read(), newest(read()))
    assert record.state is State.SKIPPED and drafting.state is State.READY_FOR_RESPONSE
    with pytest.raises(AttributeError):
        drafting.state = State.SENDING  # type: ignore[misc]


def test_answering_goes_drafting_sending_sent_and_remembers_what_it_saw() -> None:
    seen = read()
    record = ConversationRecord.new("7").drafting(seen, newest(seen))
    assert record.customer_part_id == "11" and record.seen_updated_at == 1_700_000_100
    sending = record.sending(PostKind.REPLY, "11", ["m1"])
    assert sending.state is State.SENDING and sending.action is PostKind.REPLY
    assert sending.memory_ids == ("m1",)
    sent = sending.sent(PostKind.REPLY, None, seen, reason="confident", ai_replies=[5.0])
    assert sent.state is State.AWAITING_USER_REPLY and sent.ai_replies == (5.0,)
    handed = sending.sent(PostKind.HANDOFF, None, seen, reason="keyword", ai_replies=[])
    assert handed.state is State.HANDED_OFF


def test_attempts_carry_over_only_for_the_same_customer_message() -> None:
    seen = read()
    failed = ConversationRecord.new("7").drafting(seen, newest(seen)).will_retry(60.0, "boom")
    assert failed.state is State.WAITING and failed.attempts == 1 and failed.due_at == 60.0
    assert failed.drafting(seen, newest(seen)).attempts == 1
    other = Message("12", "comment", "user", "u", "", "", "new", 1_700_000_200)
    assert failed.drafting(seen, other).attempts == 0
    dead = failed.dead_letter("boom again")
    assert dead.state is State.FAILED and dead.attempts == 2 and dead.due_at is None
    retried = dead.retried(now=99.0)
    assert retried.state is State.WAITING and retried.attempts == 0 and retried.retry_requested


def test_looking_keeps_what_was_done_last_and_skipping_does_not() -> None:
    seen = read()
    for kept in (State.AWAITING_USER_REPLY, State.HANDED_OFF, State.FAILED, State.IN_REVIEW):
        assert ConversationRecord("7", kept).looked_at(seen, "nothing new").state is kept
    waiting = ConversationRecord("7", State.WAITING, due_at=5.0)
    looked = waiting.looked_at(seen, "teammate answered")
    assert looked.state is State.SKIPPED and looked.due_at is None
    assert ConversationRecord("7", State.IN_REVIEW).skipped("gone").state is State.SKIPPED


def test_a_postponed_send_stays_sending_so_it_is_checked_before_posting_again() -> None:
    assert ConversationRecord("7", State.SENDING).postponed(9.0, "open").state is State.SENDING
    drafting = ConversationRecord("7", State.READY_FOR_RESPONSE)
    assert drafting.postponed(9.0, "open").state is State.WAITING


def test_a_review_round_trips_through_the_state_file_format() -> None:
    seen = read()
    pending = review().posted("C0123ABCD", "1763773104.000200")
    record = ConversationRecord.new("7").in_review(pending, seen, reason="low confidence")
    again = ConversationRecord.from_json("7", json.loads(json.dumps(record.to_json())))
    assert again == record
    assert again.review is not None and again.review.ts == "1763773104.000200"
    assert again.review.reviewed_draft("edited").answer == "edited"
    assert again.review.reviewed_draft().confidence == 0.55


def test_empty_values_are_left_out_of_the_state_file() -> None:
    document = ConversationRecord("7", State.WAITING, due_at=3.0).to_json()
    assert document == {
        "state": "WAITING",
        "due_at": 3.0,
        "attempts": 0,
        "created_at": 0.0,
        "updated_at": 0.0,
    }


def test_the_documented_example_state_file_reads() -> None:
    example = json.loads((REPO / "sessions.json.example").read_text())
    for cid, entry in example["conversations"].items():
        record = ConversationRecord.from_json(cid, entry)
        assert record.to_json() == {k: v for k, v in entry.items() if k in record.to_json()}
        assert set(entry) <= set(record.to_json()) | {"review"}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"state": "DONE"}, "unknown state 'DONE'"),
        ({}, "unknown state None"),
        ({"state": ["WAITING"]}, "unknown state ['WAITING']"),
        ({"state": "SENDING", "action": "shout"}, "'shout' is not a valid PostKind"),
        ({"state": "IN_REVIEW", "review": "yes"}, "'review' is not an object"),
        ("WAITING", "entry is not an object"),
    ],
)
def test_a_malformed_entry_is_refused_with_the_conversation_named(
    entry: object, message: str
) -> None:
    with pytest.raises(ValueError, match="conversation 7") as caught:
        ConversationRecord.from_json("7", entry)
    assert message in str(caught.value)
