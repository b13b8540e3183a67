"""Posting to a conversation exactly once: read, post once, look before posting again, record.

In order of the dangers:
- before posting, the intent is recorded (`SENDING`); after a crash the conversation is
  searched for our own part (`recover`) before anything is sent again;
- a write that timed out or failed with 5xx is checked the same way, never retried blind;
- right before posting, the conversation is read again (`recheck`): a teammate who
  answered wins, and a customer who wrote again gets one answer covering everything.

The pipeline sends what the model drafted; the review desk sends what a person decided.
Both go through here, so both keep the same promises.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..adapters.intercom import AmbiguousWriteError, IntercomClient, IntercomError
from ..core.conversation import Conversation, Message
from ..core.markup import text_to_html
from ..core.notes import ROUTING_NOTE_MARK, failure_note_html, review_note_html, routing_note_html
from ..core.policy import Action, Decision
from ..core.records import ConversationRecord, PostKind
from ..core.triage import Recheck, Rules, recheck
from ..defaults import AI_REPLY_WINDOW_SECONDS, AWAY_MESSAGE, MAX_POST_TRIES
from ..errors import IntercomResponderError
from .outcome import Outcome, Status

if TYPE_CHECKING:
    from ..adapters.memory import MemoryHit
    from ..adapters.metrics import Metrics
    from ..adapters.store import Store
    from ..core.business_hours import BusinessHours
    from ..core.draft import Draft
    from .routing import Router

log = logging.getLogger(__name__)

POST_KINDS = {
    Action.REPLY: PostKind.REPLY,
    Action.REVIEW: PostKind.NOTE,
    Action.HANDOFF: PostKind.HANDOFF,
}
_STATUSES = {
    PostKind.REPLY: Status.REPLIED,
    PostKind.NOTE: Status.NOTED,
    PostKind.HANDOFF: Status.HANDED_OFF,
}


@dataclass(frozen=True)
class HandoffTargets:
    """Where a hand-off assigns the conversation (HANDOFF_TEAM_ID, HANDOFF_ADMIN_ID)."""

    team_id: str | None = None
    admin_id: str | None = None


class Sending:
    def __init__(
        self,
        *,
        intercom: IntercomClient,
        store: Store,
        rules: Rules,
        handoff: HandoffTargets = HandoffTargets(),
        router: Router | None = None,
        metrics: Metrics | None = None,
        hours: BusinessHours | None = None,
        away_message: str = AWAY_MESSAGE,
        clock: Callable[[], float] = time.time,
        hours_clock: Callable[[], float] | None = None,
    ) -> None:
        self._hours = hours
        self._hours_clock = hours_clock or clock  # what time it is for BUSINESS_HOURS
        self._away_message = away_message
        self._intercom = intercom
        self._store = store
        self._rules = rules
        self._handoff = handoff
        self._router = router
        self._metrics = metrics
        self._clock = clock

    @property
    def admin_id(self) -> str:
        return self._rules.admin_id

    # --- reading --------------------------------------------------------------------------

    def read(self, conversation_id: str) -> Conversation:
        started = self._clock()
        data = self._intercom.get_conversation(conversation_id)
        return replace(Conversation.from_api(data), fetched_at=started)

    def recheck(
        self, conversation_id: str, drafted_for: str, *, ignore_handoff: bool = False
    ) -> Recheck:
        """Read again: is the message the draft answers still the one to answer?"""
        fresh = self.read(conversation_id)
        return recheck(
            fresh,
            self._rules,
            self._clock(),
            drafted_for,
            ignore_handoff=ignore_handoff,
            not_answers=self._store.record_for(conversation_id).not_answers(),
        )

    # --- sending --------------------------------------------------------------------------

    def send(
        self,
        conversation: Conversation,
        newest: Message,
        draft: Draft,
        decision: Decision,
        record: ConversationRecord,
        hits: tuple[MemoryHit, ...] = (),
        *,
        knowledge: tuple[str, ...] = (),
    ) -> Outcome:
        """Post the reply or note the decision calls for, once, and record it."""
        kind = POST_KINDS[decision.action]
        body = (
            text_to_html(draft.answer)
            if kind == PostKind.REPLY
            else review_note_html(draft, decision, knowledge=knowledge)
        )
        record = self._store.put(record.sending(kind, newest.part_id, (hit.id for hit in hits)))
        part, after = self._post_once(conversation.id, kind, body, newest.part_id)
        outcome = self._done(record, kind, part, after, decision=decision, draft=draft)
        if kind == PostKind.REPLY:
            self._mark_read(conversation.id)
        return replace(outcome, memory_hits=hits)

    def recover(self, record: ConversationRecord, conversation: Conversation) -> Outcome | None:
        """After a crash in `SENDING`: our part is there (record it) or None (send again)."""
        if record.customer_part_id is None:
            return None
        kind = record.action or PostKind.REPLY
        landed = self._landed(conversation, kind, record.customer_part_id)
        if landed is None:
            return None
        return self._done(record, kind, landed, conversation, recovered=True)

    def give_up(self, record: ConversationRecord, attempts: int, reason: str) -> None:
        """Hand a dead letter to the team: the failure note, then the assignment (routed
        with ROUTING). A failure here is logged, not raised: the record says FAILED."""
        conversation_id = record.conversation_id
        if not self._note(conversation_id, failure_note_html(attempts, reason)):
            log.error("conversation %s: could not post the failure note either", conversation_id)
        if self._router is None:
            self._assign(conversation_id)
            return
        try:
            conversation = self.read(conversation_id)
        except IntercomResponderError as exc:  # routing needs what the customer wrote
            log.warning(
                "conversation %s: dead letter not routed, the conversation cannot be read: %s",
                conversation_id,
                exc,
            )
            self._assign(conversation_id)
            return
        self._route(record, conversation)

    # --- the steps ------------------------------------------------------------------------

    def _post_once(
        self, conversation_id: str, kind: PostKind, body: str, target_part_id: str
    ) -> tuple[Message | None, Conversation]:
        """Post once; after an unclear failure, look before posting again."""
        message_type = "comment" if kind == PostKind.REPLY else "note"
        last_error: AmbiguousWriteError | None = None
        for _ in range(MAX_POST_TRIES):
            try:
                started = self._clock()
                data = self._intercom.reply(
                    conversation_id,
                    admin_id=self.admin_id,
                    body_html=body,
                    message_type=message_type,
                )
                after = replace(Conversation.from_api(data), fetched_at=started)
                return self._landed(after, kind, target_part_id), after
            except AmbiguousWriteError as exc:
                log.warning(
                    "conversation %s: %s may have been applied (%s); checking before trying again",
                    conversation_id,
                    kind.value,
                    exc,
                )
                last_error = exc
                after = self.read(conversation_id)
                landed = self._landed(after, kind, target_part_id)
                if landed is not None:
                    return landed, after
        assert last_error is not None
        raise last_error

    def _landed(
        self, conversation: Conversation, kind: PostKind, target_part_id: str
    ) -> Message | None:
        if kind == PostKind.REPLY:
            return conversation.our_reply_after(target_part_id, self.admin_id)
        return conversation.our_note_after(target_part_id, self.admin_id)

    def _done(
        self,
        record: ConversationRecord,
        kind: PostKind,
        part: Message | None,
        conversation: Conversation,
        *,
        recovered: bool = False,
        decision: Decision | None = None,
        draft: Draft | None = None,
    ) -> Outcome:
        reason = decision.reason if decision else "found our own part after a restart"
        ai_replies = recent_ai_replies(record, self._clock())
        if kind == PostKind.REPLY:
            ai_replies.append(part.created_at if part and part.created_at else self._clock())
        if kind == PostKind.HANDOFF and self._router is not None:
            record = self._route(record, conversation)
        if kind in (PostKind.HANDOFF, PostKind.NOTE):
            record, conversation = self.tell_away(record, conversation)
        self._store.put(record.sent(kind, part, conversation, reason=reason, ai_replies=ai_replies))
        if kind == PostKind.HANDOFF and self._router is None:
            self._assign(conversation.id)
        self._count(kind, decision, recovered)
        status = Status.RECOVERED if recovered else _STATUSES[kind]
        return Outcome(conversation.id, status, reason, decision, draft)

    def tell_away(
        self, record: ConversationRecord, conversation: Conversation
    ) -> tuple[ConversationRecord, Conversation]:
        """Outside BUSINESS_HOURS a customer whose message waits for a person hears when the
        team is back: AWAY_MESSAGE, once per conversation per closed period.

        Exactly once like a reply: the record is still `SENDING` (or about to be in review)
        until this is done, a restart looks for our comment before posting, and the
        period is recorded after. A failure to post is logged, never a failed hand-off.
        """
        hours = self._hours
        part_id = record.customer_part_id
        if hours is None or hours.always or part_id is None:
            return record, conversation
        now = self._hours_clock()
        period = hours.closed_since(now)
        if period is None or record.away_period == period:
            return record, conversation
        posted = conversation.our_reply_after(part_id, self.admin_id)  # after a restart
        if posted is None:
            text = self._away_message.replace("{back}", hours.describe_next_open(now))
            try:
                posted, conversation = self._post_once(
                    conversation.id, PostKind.REPLY, text_to_html(text), part_id
                )
            except IntercomResponderError as exc:
                log.warning(
                    "conversation %s: the away message could not be sent: %s", conversation.id, exc
                )
                return record, conversation
            if self._metrics is not None:
                self._metrics.away_messages.inc()
        told = record.told_away(period, posted.part_id if posted else None)
        return self._store.put(told), conversation

    def _assign(self, conversation_id: str, team_id: str | None = None) -> bool:
        """Put the conversation in a person's inbox; assignments are safe to repeat.

        `team_id` (routing's choice) instead of HANDOFF_TEAM_ID; False when Intercom
        refused the team.
        """
        team = team_id or self._handoff.team_id
        team_ok = self._assign_to(conversation_id, "team", team) if team else True
        if self._handoff.admin_id:
            self._assign_to(conversation_id, "admin", self._handoff.admin_id)
        return team_ok

    def _route(self, record: ConversationRecord, conversation: Conversation) -> ConversationRecord:
        """Classify once (the route is on disk before the assignment), assign, say so once."""
        assert self._router is not None
        route = record.route
        if route is None:
            texts = [m.text for m in conversation.unanswered_customer_messages()]
            route = self._router.route(texts, about=f"conversation {conversation.id}")
            record = self._store.put(record.routed(route))
        fallback = None if route.team_id else self._handoff.team_id
        if not self._assign(conversation.id, route.team_id) and route.team_id:
            self._router.forget_teams()  # perhaps the team is gone: read them again next time
        if not self._routing_noted(conversation, record.customer_part_id):
            self._note(conversation.id, routing_note_html(route, fallback_team_id=fallback))
        if self._metrics is not None:
            self._metrics.routed_handoffs.labels(team=route.team_name or "fallback").inc()
            if route.fallback:
                self._metrics.routing_fallbacks.labels(cause=route.fallback).inc()
        return record

    def _routing_noted(self, conversation: Conversation, customer_part_id: str | None) -> bool:
        """Our routing note is there already (a restart after posting it)."""
        after = conversation.messages_after(customer_part_id) if customer_part_id else []
        return any(
            m.kind == "note" and m.author_id == self.admin_id and ROUTING_NOTE_MARK in m.text
            for m in after
        )

    # --- the writes beside the exactly-once post ----------------------------------------------

    def _assign_to(self, conversation_id: str, assignee_type: str, assignee_id: str) -> bool:
        try:
            self._intercom.assign(
                conversation_id,
                admin_id=self.admin_id,
                assignee_type=assignee_type,
                assignee_id=assignee_id,
            )
        except IntercomResponderError as exc:  # an open breaker too
            log.warning(
                "conversation %s: handed off, but assigning it to %s %s failed: %s",
                conversation_id,
                assignee_type,
                assignee_id,
                exc,
            )
            return False
        return True

    def _note(self, conversation_id: str, body_html: str) -> bool:
        """An internal note beside the exactly-once post; a failure is logged, not raised."""
        try:
            self._intercom.reply(
                conversation_id, admin_id=self.admin_id, body_html=body_html, message_type="note"
            )
        except IntercomResponderError as exc:  # an open breaker too
            log.warning("conversation %s: could not post a note: %s", conversation_id, exc)
            return False
        return True

    def _mark_read(self, conversation_id: str) -> None:
        try:
            self._intercom.mark_read(conversation_id)
        except IntercomError as exc:
            log.warning(
                "conversation %s: replied, but marking it read failed: %s", conversation_id, exc
            )

    def _count(self, kind: PostKind, decision: Decision | None, recovered: bool) -> None:
        if self._metrics is None:
            return
        rule = decision.rule if decision is not None else ""
        if kind == PostKind.REPLY:
            reviewed = rule if rule in ("approved", "edited") else "ai"
            self._metrics.replies_sent.labels(source="recovered" if recovered else reviewed).inc()
        elif kind == PostKind.NOTE:
            self._metrics.review_notes.inc()
        else:
            self._metrics.handoffs.labels(reason=rule or "other").inc()


class DryRunSending(Sending):
    """Shows what would be sent and writes nothing to Intercom (the store keeps it in memory)."""

    def send(
        self,
        conversation: Conversation,
        newest: Message,
        draft: Draft,
        decision: Decision,
        record: ConversationRecord,
        hits: tuple[MemoryHit, ...] = (),
        *,
        knowledge: tuple[str, ...] = (),
    ) -> Outcome:
        # remembered in memory only, so a long dry run shows each conversation once
        self._store.put(record.looked_at(conversation, f"dry run: would {decision.action.value}"))
        route = None
        if decision.action is Action.HANDOFF and self._router is not None:
            texts = [m.text for m in conversation.unanswered_customer_messages()]
            route = self._router.route(texts, about=f"conversation {conversation.id} (dry run)")
        return Outcome(
            conversation.id, Status.DRY_RUN, decision.reason, decision, draft, hits, route
        )

    def _assign_to(self, conversation_id: str, assignee_type: str, assignee_id: str) -> bool:
        return True

    def _note(self, conversation_id: str, body_html: str) -> bool:
        return True


def recent_ai_replies(record: ConversationRecord, now: float) -> list[float]:
    """When our AI replies in this conversation went out, within MAX_AI_REPLIES_PER_HOUR's hour."""
    return [t for t in record.ai_replies if now - t < AI_REPLY_WINDOW_SECONDS]
