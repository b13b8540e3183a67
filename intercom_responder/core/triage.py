"""Which conversations need the daemon, and when: the skip rules, without I/O.

Two stages keep an idle poll cheap: `skip_from_summary` looks only at a search result
(no extra call), `assess` looks at the whole conversation once it has been fetched.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..defaults import SETTLE_SECONDS
from .conversation import Conversation, Message


class SkipCode(StrEnum):
    """Why there is nothing to answer, for code to decide on; `Skip.reason` is for people."""

    NOT_OPEN = "not_open"
    ASSIGNED_ELSEWHERE = "assigned_elsewhere"
    NO_CUSTOMER_MESSAGE = "no_customer_message"
    ANSWERED = "answered"  # the last comment is from our side: us, a teammate, a bot
    HANDED_OFF = "handed_off"  # our hand-off note is there: a teammate's turn
    TOO_OLD = "too_old"  # MAX_MESSAGE_AGE_HOURS
    UNCHANGED = "unchanged"  # a search result we already read at this updated_at
    NOBODY_WAITING = "nobody_waiting"  # a search result whose customer waits on nobody


@dataclass(frozen=True)
class Skip:
    code: SkipCode
    reason: str


@dataclass(frozen=True)
class Rules:
    admin_id: str
    debounce_seconds: float
    max_message_age_seconds: float
    skip_assigned_to_others: bool = True


@dataclass(frozen=True)
class Assessment:
    """What to do with a fetched conversation: answer `pending`, wait, or skip."""

    pending: tuple[Message, ...] = ()
    skip: Skip | None = None
    wait_until: float | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.pending) and self.skip is None and self.wait_until is None

    @property
    def skip_reason(self) -> str | None:
        return self.skip.reason if self.skip is not None else None

    @property
    def newest(self) -> Message | None:
        return self.pending[-1] if self.pending else None


def assess(
    conversation: Conversation,
    rules: Rules,
    now: float,
    *,
    ignore_handoff: bool = False,
    not_answers: frozenset[str] = frozenset(),
) -> Assessment:
    """`ignore_handoff`: a person asked to try again (`dlq retry`) despite our hand-off note.
    `not_answers`: our comments that answered nothing (the away message)."""
    if conversation.state != "open":
        return Assessment(skip=Skip(SkipCode.NOT_OPEN, f"conversation is {conversation.state}"))
    other = _assigned_to_someone_else(conversation.admin_assignee_id, rules)
    if other:
        return Assessment(skip=other)
    pending = conversation.unanswered_customer_messages(not_answers)
    if not pending:
        last = conversation.last_comment()
        if last is None:
            return Assessment(skip=Skip(SkipCode.NO_CUSTOMER_MESSAGE, "no customer message"))
        who = "ours" if last.author_id == rules.admin_id else f"from {last.author_type}"
        return Assessment(skip=Skip(SkipCode.ANSWERED, f"last comment is {who}"))
    if not ignore_handoff and conversation.our_note_after(pending[0].part_id, rules.admin_id):
        return Assessment(
            skip=Skip(SkipCode.HANDED_OFF, "handed to the team; waiting for a teammate")
        )
    newest = pending[-1]
    age = now - newest.created_at
    if age > rules.max_message_age_seconds:
        return Assessment(
            skip=Skip(
                SkipCode.TOO_OLD,
                f"newest customer message is {age / 3600:.1f} h old "
                f"(MAX_MESSAGE_AGE_HOURS is {rules.max_message_age_seconds / 3600:g})",
            )
        )
    if age < rules.debounce_seconds:
        return Assessment(
            pending=tuple(pending), wait_until=newest.created_at + rules.debounce_seconds
        )
    return Assessment(pending=tuple(pending))


def skip_from_summary(
    summary: dict[str, Any],
    seen_updated_at: int | None,
    seen_at: float | None,
    rules: Rules,
    now: float,
    *,
    trust_waiting_since: bool = True,
) -> Skip | None:
    """Why a search result needs no fetch, or None when it must be read in full.

    `trust_waiting_since=False` (the sweep) reads a result although `waiting_since` says
    nobody waits: Intercom does not promise it is set for every waiting customer.

    Search results carry no conversation parts, but `waiting_since` (null when the last
    reply came from our side), `state` and the assignee are enough to leave most open
    conversations alone without another call.
    """
    try:
        updated_at = int(summary.get("updated_at") or 0)
    except (TypeError, ValueError):
        return None  # cannot judge from the summary: read the whole conversation
    if _unchanged(updated_at, seen_updated_at, seen_at):
        return Skip(SkipCode.UNCHANGED, "unchanged since it was last read")
    state = summary.get("state") or ("open" if summary.get("open") else "closed")
    if state != "open":
        return Skip(SkipCode.NOT_OPEN, f"conversation is {state}")
    if trust_waiting_since and not summary.get("waiting_since"):
        return Skip(SkipCode.NOBODY_WAITING, "no customer is waiting")
    other = _assigned_to_someone_else(summary.get("admin_assignee_id"), rules)
    if other:
        return other
    if updated_at and now - updated_at > rules.max_message_age_seconds:
        return Skip(SkipCode.TOO_OLD, "no change within MAX_MESSAGE_AGE_HOURS")
    return None


def _unchanged(updated_at: int, seen_updated_at: int | None, seen_at: float | None) -> bool:
    """Whether our last read already covers this `updated_at`.

    `updated_at` has one-second resolution: a customer message in the same second as our
    read, but after it, leaves `updated_at` unchanged. A read counts as covering its
    second only if it was made `SETTLE_SECONDS` after that second began; otherwise the
    conversation is read once more.
    """
    if seen_updated_at is None:
        return False
    if updated_at < seen_updated_at:
        return True
    return (
        updated_at == seen_updated_at
        and seen_at is not None
        and seen_at >= updated_at + SETTLE_SECONDS
    )


def _assigned_to_someone_else(assignee: Any, rules: Rules) -> Skip | None:
    if not rules.skip_assigned_to_others or assignee in (None, "", 0, "0"):
        return None
    if str(assignee) == rules.admin_id:
        return None
    return Skip(SkipCode.ASSIGNED_ELSEWHERE, f"assigned to teammate {assignee}")


@dataclass(frozen=True)
class Recheck:
    """A second look at a conversation for which a draft was made: is it still wanted?

    The pipeline before it sends, and the review desk before it acts on a click or an
    expiry, ask the same question of a freshly read conversation.
    """

    conversation: Conversation
    assessment: Assessment
    drafted_for: str  # the customer part the draft answers

    @property
    def current(self) -> bool:
        """The draft may go out: the message it answers is still the newest, nothing to skip."""
        newest = self.assessment.newest
        return (
            newest is not None
            and newest.part_id == self.drafted_for
            and self.assessment.skip is None
        )

    @property
    def customer_wrote_again(self) -> bool:
        newest = self.assessment.newest
        return newest is not None and newest.part_id != self.drafted_for

    def stale_reason(self) -> str:
        """Why the draft is no longer wanted, in words for the reviewer."""
        if self.customer_wrote_again:
            return "the customer wrote again since the draft"
        skip = self.assessment.skip
        if skip is not None and skip.code is SkipCode.ANSWERED:
            return "a teammate answered since the draft"
        return skip.reason if skip is not None else "the conversation changed since the draft"


def recheck(
    conversation: Conversation,
    rules: Rules,
    now: float,
    drafted_for: str,
    *,
    ignore_handoff: bool = False,
    not_answers: frozenset[str] = frozenset(),
) -> Recheck:
    assessment = assess(
        conversation, rules, now, ignore_handoff=ignore_handoff, not_answers=not_answers
    )
    return Recheck(conversation, assessment, drafted_for)
