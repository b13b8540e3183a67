"""What the daemon did for one conversation, and the only ways that can change.

A `ConversationRecord` is immutable. Every change of state is one of the named
transitions below (`drafting`, `sending`, `sent`, `waiting` ...), each returning the
next record, which the caller hands to the state store. So the states a record can
pass through, and what each one carries, can be read in this one file; the store only
keeps and persists records, and never decides a state itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from .conversation import Conversation, Message
from .draft import Draft


class State(StrEnum):
    """Where a conversation stands. In the state file as the upper-case name."""

    WAITING = "WAITING"  # debounce, or a retry after a failure: read again at `due_at`
    READY_FOR_RESPONSE = "READY_FOR_RESPONSE"  # customer messages found, draft under way
    SENDING = "SENDING"  # a reply or note is about to be posted: look before sending again
    IN_REVIEW = "IN_REVIEW"  # a draft waits for a person in Slack (see `review`)
    AWAITING_USER_REPLY = "AWAITING_USER_REPLY"  # our reply is out
    HANDED_OFF = "HANDED_OFF"  # an internal note put it in front of the team
    SKIPPED = "SKIPPED"  # looked at, nothing to do (teammate answered, too old, ...)
    FAILED = "FAILED"  # a dead letter: gave up after MAX_ATTEMPTS; the team got a note


#: Finished until Intercom shows a newer customer message; pruned after SESSION_TTL_HOURS.
#: FAILED (a dead letter) is kept until `dlq retry` or a newer customer message.
FINISHED_STATES = frozenset({State.AWAITING_USER_REPLY, State.HANDED_OFF, State.SKIPPED})
#: A customer message waits on the daemon itself (not on a person).
WAITING_ON_DAEMON = frozenset({State.WAITING, State.READY_FOR_RESPONSE, State.SENDING})
#: Looked at in every poll, whatever the search says: work was under way.
IN_FLIGHT_STATES = frozenset({State.READY_FOR_RESPONSE, State.SENDING})
#: Kept when the daemon looks and finds nothing to do: they say what was done last.
KEPT_WHEN_LOOKED_AT = frozenset(
    {State.AWAITING_USER_REPLY, State.HANDED_OFF, State.FAILED, State.IN_REVIEW}
)
#: A debounce may park these from a search result; the others need the pipeline's look.
PARKABLE_STATES = frozenset({State.SKIPPED, State.AWAITING_USER_REPLY, State.WAITING})


class PostKind(StrEnum):
    """What the daemon posts to a conversation."""

    REPLY = "reply"  # a comment to the customer
    NOTE = "note"  # an internal note with a draft for review
    HANDOFF = "handoff"  # an internal note, then the assignment


@dataclass(frozen=True)
class PendingReview:
    """A draft waiting in Slack, with all it takes to act on a click after a restart."""

    customer_part_id: str
    customer_name: str
    question: str
    draft: str
    confidence: float
    reasoning: str
    reason: str
    url: str | None
    requested_at: float
    expires_at: float
    channel: str | None = None  # where the Slack message is, once posted
    ts: str | None = None
    knowledge: tuple[str, ...] = ()  # the documentation the draft was given, one line each

    def posted(self, channel: str, ts: str) -> PendingReview:
        return replace(self, channel=channel, ts=ts)

    def reviewed_draft(self, answer: str | None = None) -> Draft:
        """The draft as reviewed: as it was, or with the text a reviewer wrote."""
        return Draft(
            answer=self.draft if answer is None else answer,
            confidence=self.confidence,
            reasoning=self.reasoning,
        )

    def to_json(self) -> dict[str, Any]:
        document = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "knowledge"}
        if self.knowledge:  # absent when empty, as in the state files before it existed
            document["knowledge"] = list(self.knowledge)
        return document

    @classmethod
    def from_json(cls, data: Any) -> PendingReview:
        if not isinstance(data, Mapping):
            raise ValueError("'review' is not an object")
        ts = data.get("ts")
        return cls(
            customer_part_id=str(data.get("customer_part_id") or ""),
            customer_name=str(data.get("customer_name") or ""),
            question=str(data.get("question") or ""),
            draft=str(data.get("draft") or ""),
            confidence=float(data.get("confidence") or 0.0),
            reasoning=str(data.get("reasoning") or ""),
            reason=str(data.get("reason") or ""),
            url=str(data["url"]) if data.get("url") else None,
            requested_at=float(data.get("requested_at") or 0.0),
            expires_at=float(data.get("expires_at") or 0.0),
            channel=str(data["channel"]) if data.get("channel") else None,
            ts=str(ts) if ts else None,
            knowledge=tuple(str(line) for line in data.get("knowledge") or ()),
        )


@dataclass(frozen=True)
class RouteTaken:
    """Where routing sent a hand-off: kept so that it is never classified twice."""

    team_id: str | None  # None: the fallback (HANDOFF_TEAM_ID, or nobody)
    team_name: str | None
    confidence: float
    reason: str
    fallback: str | None = None  # why the model's choice was not used

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: Any) -> RouteTaken:
        if not isinstance(data, Mapping):
            raise ValueError("'route' is not an object")
        return cls(
            team_id=str(data["team_id"]) if data.get("team_id") else None,
            team_name=str(data["team_name"]) if data.get("team_name") else None,
            confidence=float(data.get("confidence") or 0.0),
            reason=str(data.get("reason") or ""),
            fallback=str(data["fallback"]) if data.get("fallback") else None,
        )


@dataclass(frozen=True)
class ConversationRecord:
    conversation_id: str
    state: State
    customer_part_id: str | None = None  # newest customer part handled or in flight
    action: PostKind | None = None  # SENDING: what is about to be posted
    reply_part_id: str | None = None  # the part we posted
    seen_updated_at: int | None = None  # Intercom's updated_at when we last read it
    seen_at: float | None = None  # local time of that read (same-second changes, see triage)
    due_at: float | None = None  # WAITING: when to look again
    attempts: int = 0
    last_error: str | None = None
    reason: str | None = None
    session_id: str | None = None
    session_expires_at: float | None = None
    ai_replies: tuple[float, ...] = ()  # when our AI replies went out (last hour only)
    memory_ids: tuple[str, ...] = ()  # catalogue entries given to the model for this draft
    review: PendingReview | None = None  # IN_REVIEW, and kept after: the Slack message
    customer_message_at: int | None = None  # when the newest customer message was written
    retry_requested: bool = False  # `dlq retry`: try again although it was handed off
    route: RouteTaken | None = None  # SENDING a hand-off with ROUTING: the team chosen
    away_period: float | None = None  # the closed period (its start) we sent AWAY_MESSAGE in
    away_part_id: str | None = None  # that message: it answers nothing (see `not_answers`)
    created_at: float = 0.0  # set by the store
    updated_at: float = 0.0  # set by the store

    def __post_init__(self) -> None:
        # Plain strings and lists (a test, a hand-made record) become the typed values.
        set_field = object.__setattr__
        set_field(self, "state", State(self.state))
        if self.action is not None:
            set_field(self, "action", PostKind(self.action))
        if self.review is not None and not isinstance(self.review, PendingReview):
            set_field(self, "review", PendingReview.from_json(self.review))
        if self.route is not None and not isinstance(self.route, RouteTaken):
            set_field(self, "route", RouteTaken.from_json(self.route))
        set_field(self, "ai_replies", tuple(self.ai_replies or ()))
        set_field(self, "memory_ids", tuple(self.memory_ids or ()))

    @classmethod
    def new(cls, conversation_id: str) -> ConversationRecord:
        """A conversation not recorded yet: nothing done, until a transition says otherwise."""
        return cls(conversation_id=conversation_id, state=State.SKIPPED)

    # --- answering ----------------------------------------------------------------------

    def drafting(self, conversation: Conversation, newest: Message) -> ConversationRecord:
        """Customer messages found; attempts carry over only for the same message."""
        same_message = self.customer_part_id == newest.part_id
        return self._to(
            State.READY_FOR_RESPONSE,
            customer_part_id=newest.part_id,
            customer_message_at=newest.created_at,
            attempts=self.attempts if same_message else 0,
            due_at=None,
            action=None,
            retry_requested=False,
            route=None,
            **_seen(conversation),
        )

    def with_session(self, session_id: str, expires_at: float) -> ConversationRecord:
        return replace(self, session_id=session_id, session_expires_at=expires_at)

    def session_expired(self) -> ConversationRecord:
        return replace(self, session_id=None, session_expires_at=None)

    def sending(
        self, kind: PostKind, customer_part_id: str, memory_ids: Iterable[str] = ()
    ) -> ConversationRecord:
        """The intent, on disk before the post: after a crash, look before posting again."""
        return self._to(
            State.SENDING,
            action=kind,
            customer_part_id=customer_part_id,
            memory_ids=tuple(memory_ids),
        )

    def told_away(self, period: float, part_id: str | None) -> ConversationRecord:
        """AWAY_MESSAGE went out in the closed period that began at `period` (state unchanged)."""
        return replace(self, away_period=period, away_part_id=part_id or self.away_part_id)

    def not_answers(self) -> frozenset[str]:
        """Our comments that answered nothing: a customer writing after them still waits."""
        return frozenset({self.away_part_id}) if self.away_part_id else frozenset()

    def routed(self, route: RouteTaken) -> ConversationRecord:
        """The team a hand-off goes to, on disk before the assignment (state unchanged)."""
        return replace(self, route=route)

    def sent(
        self,
        kind: PostKind,
        part: Message | None,
        conversation: Conversation,
        *,
        reason: str,
        ai_replies: Iterable[float],
    ) -> ConversationRecord:
        state = State.AWAITING_USER_REPLY if kind is PostKind.REPLY else State.HANDED_OFF
        return self._to(
            state,
            reply_part_id=part.part_id if part else None,
            attempts=0,
            last_error=None,
            due_at=None,
            reason=reason,
            ai_replies=tuple(ai_replies),
            **_seen(conversation),
        )

    def in_review(
        self,
        review: PendingReview,
        conversation: Conversation,
        *,
        reason: str,
        memory_ids: Iterable[str] = (),
    ) -> ConversationRecord:
        return self._to(
            State.IN_REVIEW,
            customer_part_id=review.customer_part_id,
            review=review,
            memory_ids=tuple(memory_ids),
            reason=reason,
            **_seen(conversation),
        )

    # --- waiting and looking ------------------------------------------------------------

    def waiting(
        self,
        until: float,
        reason: str,
        *,
        conversation: Conversation | None = None,
        newest: Message | None = None,
    ) -> ConversationRecord:
        """Look again at `until`: a debounce (with the message it waits on), or a nudge."""
        changes: dict[str, Any] = {"due_at": until, "reason": reason}
        if newest is not None:
            changes.update(customer_part_id=newest.part_id, customer_message_at=newest.created_at)
        if conversation is not None:
            changes.update(_seen(conversation))
        return self._to(State.WAITING, **changes)

    def looked_at(self, conversation: Conversation, reason: str) -> ConversationRecord:
        """Nothing to do now; a state that says what was done last is kept."""
        state = self.state if self.state in KEPT_WHEN_LOOKED_AT else State.SKIPPED
        return self._to(state, due_at=None, reason=reason, **_seen(conversation))

    def skipped(self, reason: str) -> ConversationRecord:
        """Nothing to do, whatever was under way (a vanished conversation, a stale review)."""
        return self._to(State.SKIPPED, due_at=None, reason=reason)

    # --- failures ----------------------------------------------------------------------

    def postponed(self, until: float, error: str) -> ConversationRecord:
        """A dependency is switched off: come back then; not this message's fault."""
        state = State.SENDING if self.state is State.SENDING else State.WAITING
        return self._to(state, due_at=until, last_error=error)

    def will_retry(self, until: float, error: str) -> ConversationRecord:
        return self._to(State.WAITING, attempts=self.attempts + 1, last_error=error, due_at=until)

    def dead_letter(self, error: str) -> ConversationRecord:
        return self._to(State.FAILED, attempts=self.attempts + 1, last_error=error, due_at=None)

    def retried(self, now: float) -> ConversationRecord:
        """`dlq retry`: back in the queue, allowed past our own hand-off note once."""
        return self._to(
            State.WAITING,
            attempts=0,
            due_at=now,
            retry_requested=True,
            reason="retried from the dead letters",
        )

    # --- the state file ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        # Not asdict(): it deep-copies, and compacting 10,000 records must stay cheap.
        document: dict[str, Any] = {}
        for name in _JSON_FIELDS:
            value = getattr(self, name)
            if value is None or value == () or (name == "retry_requested" and not value):
                continue
            if isinstance(value, PendingReview | RouteTaken):
                value = value.to_json()
            elif isinstance(value, tuple):
                value = list(value)
            document[name] = value
        return document

    @classmethod
    def from_json(cls, conversation_id: str, data: Any) -> ConversationRecord:
        if not isinstance(data, dict):
            raise ValueError(f"conversation {conversation_id}: entry is not an object")
        values = {key: value for key, value in data.items() if key in _JSON_FIELDS}
        state = data.get("state")
        if not isinstance(state, str) or state not in State.__members__:
            raise ValueError(f"conversation {conversation_id}: unknown state {data.get('state')!r}")
        try:
            return cls(conversation_id=conversation_id, **values)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"conversation {conversation_id}: {exc}") from None

    def _to(self, state: State, **changes: Any) -> ConversationRecord:
        return replace(self, state=state, **changes)


_JSON_FIELDS = tuple(f.name for f in fields(ConversationRecord) if f.name != "conversation_id")


def _seen(conversation: Conversation) -> dict[str, Any]:
    """Which version of the conversation was read, and when (see triage)."""
    return {"seen_updated_at": conversation.updated_at, "seen_at": conversation.fetched_at}
