"""The skip rules, on fetched conversations and on search summaries."""

from __future__ import annotations

from intercom_responder.core.conversation import NOTE_MARKER, Conversation
from intercom_responder.core.triage import Rules, SkipCode, assess, recheck, skip_from_summary
from tests.builders import ADMIN_ID, T0, conversation, part

RULES = Rules(admin_id=ADMIN_ID, debounce_seconds=15, max_message_age_seconds=24 * 3600)
NOW = T0 + 60


def judge(data: dict[str, object], rules: Rules = RULES, now: float = NOW):  # type: ignore[no-untyped-def]
    return assess(Conversation.from_api(data), rules, now)


def test_a_waiting_customer_is_answerable() -> None:
    result = judge(conversation(part("1", "<p>help?</p>", at=T0 + 10)))
    assert result.answerable
    assert [m.part_id for m in result.pending] == ["src-1", "1"]


def test_closed_and_snoozed_conversations_are_skipped() -> None:
    assert judge(conversation(state="closed")).skip_reason == "conversation is closed"
    assert judge(conversation(state="snoozed")).skip_reason == "conversation is snoozed"


def test_last_comment_ours_or_a_teammates_is_skipped() -> None:
    ours = judge(conversation(part("1", "<p>a</p>", author_type="admin", author_id=ADMIN_ID)))
    assert ours.skip_reason == "last comment is ours"
    teammate = judge(conversation(part("1", "<p>a</p>", author_type="admin", author_id="5")))
    assert teammate.skip_reason == "last comment is from admin"


def test_notes_and_assignments_do_not_count_as_answers() -> None:
    result = judge(
        conversation(
            part("1", "<p>internal</p>", author_type="admin", author_id="5", part_type="note"),
            part("2", None, author_type="admin", author_id="5", part_type="assignment"),
        )
    )
    assert result.answerable


def test_assigned_to_another_teammate_is_skipped_unless_switched_off() -> None:
    data = conversation(admin_assignee_id=5)
    assert judge(data).skip_reason == "assigned to teammate 5"
    relaxed = Rules(ADMIN_ID, 15, 24 * 3600, skip_assigned_to_others=False)
    assert judge(data, relaxed).answerable
    assert judge(conversation(admin_assignee_id=int(ADMIN_ID))).answerable


def test_a_young_message_waits_for_the_debounce() -> None:
    result = judge(conversation(part("1", "<p>and...</p>", at=NOW - 5)))
    assert not result.answerable
    assert result.wait_until == NOW - 5 + 15
    assert result.skip_reason is None


def test_an_old_message_is_left_alone() -> None:
    result = judge(conversation(created_at=T0), now=T0 + 25 * 3600)
    assert result.skip_reason is not None
    assert "MAX_MESSAGE_AGE_HOURS" in result.skip_reason


def test_a_handed_off_conversation_waits_for_a_teammate() -> None:
    note = part(
        "2",
        f"<p>{NOTE_MARKER} x</p>",
        author_type="admin",
        author_id=ADMIN_ID,
        part_type="note",
        at=T0 + 2,
    )
    handed = judge(
        conversation(part("1", "<p>q</p>", at=T0 + 1), note, part("3", "<p>hello??</p>", at=T0 + 3))
    )
    assert handed.skip_reason == "handed to the team; waiting for a teammate"
    answered_then_new = judge(
        conversation(
            part("1", "<p>q</p>", at=T0 + 1),
            note,
            part("3", "<p>a</p>", author_type="admin", author_id="5", at=T0 + 4),
            part("4", "<p>thanks, one more</p>", at=T0 + 5),
        )
    )
    assert answered_then_new.answerable


def summary(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "1",
        "updated_at": NOW - 10,
        "state": "open",
        "waiting_since": NOW - 20,
        "admin_assignee_id": 0,
    }
    base.update(fields)
    return base


def test_summaries_that_need_no_fetch() -> None:
    def skip(fields: dict[str, object], seen: int | None = None, seen_at: float | None = None):  # type: ignore[no-untyped-def]
        found = skip_from_summary(fields, seen, seen_at, RULES, NOW)
        return found.reason if found is not None else None

    assert skip(summary()) is None
    assert skip(summary(waiting_since=None)) == "no customer is waiting"
    assert skip(summary(state="snoozed")) == "conversation is snoozed"
    assert skip(summary(admin_assignee_id=5)) == "assigned to teammate 5"
    assert skip(summary(updated_at=NOW - 25 * 3600)) == "no change within MAX_MESSAGE_AGE_HOURS"
    # already read at this updated_at, well after that second: no fetch
    assert skip(summary(), NOW - 10, NOW - 5) == "unchanged since it was last read"
    assert skip(summary(), NOW - 9) == "unchanged since it was last read"
    # changed since
    assert skip(summary(), NOW - 11, NOW - 5) is None


def test_a_read_in_the_same_second_as_a_change_is_not_trusted() -> None:
    """A message written in the second of our read, after it, keeps `updated_at` equal."""
    same_second_read = NOW - 10 + 0.4
    assert skip_from_summary(summary(), NOW - 10, same_second_read, RULES, NOW) is None
    assert skip_from_summary(summary(), NOW - 10, None, RULES, NOW) is None


def test_a_recheck_says_whether_the_draft_is_still_wanted() -> None:
    drafted = judge(conversation())
    assert drafted.newest is not None
    part_id = drafted.newest.part_id

    same = recheck(Conversation.from_api(conversation()), RULES, NOW, part_id)
    assert same.current and not same.customer_wrote_again

    wrote = conversation(part("2", "<p>one more thing</p>", at=NOW - 30))
    again = recheck(Conversation.from_api(wrote), RULES, NOW, part_id)
    assert not again.current and again.customer_wrote_again
    assert again.stale_reason() == "the customer wrote again since the draft"

    answered = conversation(part("2", "<p>done</p>", author_type="admin", author_id="555"))
    teammate = recheck(Conversation.from_api(answered), RULES, NOW, part_id)
    assert teammate.assessment.skip is not None
    assert teammate.assessment.skip.code is SkipCode.ANSWERED
    assert teammate.stale_reason() == "a teammate answered since the draft"

    closed = recheck(Conversation.from_api(conversation(state="closed")), RULES, NOW, part_id)
    assert not closed.current and closed.stale_reason() == "conversation is closed"

    later = NOW + 25 * 3600  # the same message, now past MAX_MESSAGE_AGE_HOURS
    old = recheck(Conversation.from_api(conversation()), RULES, later, part_id)
    assert not old.current and not old.customer_wrote_again
    assert old.assessment.skip is not None and old.assessment.skip.code is SkipCode.TOO_OLD
