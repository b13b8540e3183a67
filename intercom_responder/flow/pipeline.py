"""One conversation: read -> assess -> draft -> decide -> re-read -> act -> record.

`handle` takes the conversation's lock, reads it, and either recovers a post that was
under way at a crash, waits for a Slack review, waits out a debounce, skips, or
answers. Answering drafts a proposal (memory, model, policy), reads the conversation
again, and acts only if the message drafted for is still the newest: a teammate who
answered wins, and a customer who wrote again gets one draft covering everything.
Posting itself, with its exactly-once bookkeeping, is `Sending`'s; a dry run is wired
with `DryRunSending`, so nothing here branches on it.

Intercom itself is the last word: a conversation whose last comment is ours, or that
carries our hand-off note, is never answered again, whatever the state file says.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..adapters.breaker import CircuitOpenError
from ..adapters.files import StateFileError
from ..adapters.intercom import IntercomError
from ..adapters.slack import ReviewError
from ..core.conversation import Conversation, Message
from ..core.knowledge import describe_pieces
from ..core.policy import Action
from ..core.records import ConversationRecord, State
from ..core.triage import Assessment, Rules, assess
from ..defaults import (
    MAX_ATTEMPTS,
    MAX_REDRAFTS,
    RETRY_BASE_SECONDS,
    RETRY_MAX_SECONDS,
    SESSION_TTL_HOURS,
    STATE_RETRY_SECONDS,
    TRANSCRIPT_MESSAGES,
)
from ..errors import dependency_of
from .drafting import Drafter, Proposal
from .locks import ClaimedElsewhereError, ConversationLocks
from .outcome import CLAIMED_ELSEWHERE, Outcome, Status
from .sending import Sending, recent_ai_replies

if TYPE_CHECKING:
    from ..adapters.metrics import Metrics
    from ..adapters.store import Store
    from .review_desk import ReviewDesk

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineSettings:
    rules: Rules
    max_attempts: int = MAX_ATTEMPTS
    session_ttl_seconds: float = SESSION_TTL_HOURS * 3600
    retry_base_seconds: float = RETRY_BASE_SECONDS
    retry_max_seconds: float = RETRY_MAX_SECONDS


class Pipeline:
    def __init__(
        self,
        *,
        sending: Sending,
        drafter: Drafter,
        store: Store,
        settings: PipelineSettings,
        locks: ConversationLocks | None = None,
        desk: ReviewDesk | None = None,
        clock: Callable[[], float] = time.time,
        stopping: threading.Event | None = None,
        report: Callable[[Outcome], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._sending = sending
        self._drafter = drafter
        self._store = store
        self._settings = settings
        self._rules = settings.rules
        self._locks = locks if locks is not None else ConversationLocks()  # empty is falsy
        self._desk = desk
        self._clock = clock
        self._stopping = stopping or threading.Event()
        self._report = report
        self._metrics = metrics

    def handle(self, conversation_id: str) -> Outcome:
        """Never raises for a problem with this one conversation: it is recorded."""
        try:
            with self._locks.hold(conversation_id):
                try:
                    outcome = self._handle(conversation_id)
                except Exception as exc:  # one conversation must never stop the others
                    outcome = self._failed(conversation_id, exc)
        except ClaimedElsewhereError:  # a replica on the same database has it: it answers
            outcome = Outcome(conversation_id, Status.SKIPPED, CLAIMED_ELSEWHERE)
        self._log(outcome)
        if self._report is not None:
            self._report(outcome)
        return outcome

    # --- the steps ---------------------------------------------------------------------

    def _handle(self, conversation_id: str) -> Outcome:
        record = self._store.record_for(conversation_id)
        conversation = self._sending.read(conversation_id)
        if record.state is State.SENDING:
            recovered = self._sending.recover(record, conversation)
            if recovered is not None:
                if self._desk is not None:
                    self._desk.recovered(record)
                return recovered
        if record.state is State.IN_REVIEW:
            if self._desk is None or self._desk.still_pending(record, conversation):
                return self._skip(record, conversation, "waiting for the review in Slack")
            record = self._store.record_for(conversation_id)  # the stale review was recorded
        retrying = record.retry_requested
        assessment = assess(
            conversation,
            self._rules,
            self._clock(),
            ignore_handoff=retrying,
            not_answers=record.not_answers(),
        )
        newest = assessment.newest
        if record.state is State.FAILED and newest and newest.part_id == record.customer_part_id:
            return self._skip(record, conversation, "dead letter: see `python main.py dlq`")
        if newest is not None and assessment.wait_until is not None:
            return self._wait(record, conversation, newest, assessment.wait_until)
        if not assessment.answerable:
            return self._skip(record, conversation, assessment.skip_reason or "nothing to answer")
        return self._answer(conversation, assessment, record, ignore_handoff=retrying)

    def _answer(
        self,
        conversation: Conversation,
        assessment: Assessment,
        record: ConversationRecord,
        *,
        ignore_handoff: bool,
    ) -> Outcome:
        """Draft, look again, act; drafts again (a few times) while the customer writes on."""
        for _ in range(MAX_REDRAFTS):
            newest = assessment.newest
            assert newest is not None
            record = self._store.put(record.drafting(conversation, newest))
            proposal = self._propose(conversation, assessment, record)
            record = self._keep_session(record, proposal)
            if self._stopping.is_set():
                return Outcome(conversation.id, Status.ABANDONED, "shutting down before sending")
            look = self._sending.recheck(
                conversation.id, newest.part_id, ignore_handoff=ignore_handoff
            )
            if look.current:
                return self._act(look.conversation, newest, proposal, record, look.assessment)
            again = look.assessment
            if not look.customer_wrote_again or again.skip is not None:
                reason = again.skip_reason or "nothing to answer any more"
                return self._skip(
                    record, look.conversation, f"draft dropped: {reason}", dropped=True
                )
            log.info(
                "conversation %s: the customer wrote again while drafting; drafting again",
                conversation.id,
            )
            if again.newest is not None and again.wait_until is not None:
                return self._wait(record, look.conversation, again.newest, again.wait_until)
            conversation, assessment = look.conversation, again
        latest = assessment.newest
        assert latest is not None
        return self._wait(record, conversation, latest, self._clock())

    def _propose(
        self, conversation: Conversation, assessment: Assessment, record: ConversationRecord
    ) -> Proposal:
        return self._drafter.propose(
            conversation_id=conversation.id,
            customer_name=conversation.customer_name,
            transcript=conversation.transcript(TRANSCRIPT_MESSAGES),
            pending=assessment.pending,
            ai_replies_last_hour=len(recent_ai_replies(record, self._clock())),
            session_id=self._store.session(conversation.id),
            not_answers=record.not_answers(),
        )

    def _keep_session(self, record: ConversationRecord, proposal: Proposal) -> ConversationRecord:
        """A responder that keeps a session per conversation gets the same one next time."""
        session_id = proposal.draft.session_id
        if not session_id:
            return record
        expires_at = self._clock() + self._settings.session_ttl_seconds
        return self._store.put(record.with_session(session_id, expires_at))

    def _act(
        self,
        conversation: Conversation,
        newest: Message,
        proposal: Proposal,
        record: ConversationRecord,
        assessment: Assessment,
    ) -> Outcome:
        """A draft for review goes to Slack when it can; everything else is posted."""
        draft, decision, hits = proposal.draft, proposal.decision, proposal.hits
        knowledge = tuple(describe_pieces(proposal.pieces, draft.sources))
        if decision.action is Action.REVIEW and self._desk is not None and self._desk.available:
            try:
                return self._desk.request(
                    conversation,
                    newest,
                    draft,
                    decision,
                    record,
                    assessment.pending,
                    hits,
                    knowledge,
                )
            except ReviewError as exc:
                log.warning(
                    "conversation %s: Slack review failed (%s); posting an internal note",
                    conversation.id,
                    exc,
                )
        return self._sending.send(
            conversation, newest, draft, decision, record, hits, knowledge=knowledge
        )

    # --- the other endings ---------------------------------------------------------------

    def _wait(
        self,
        record: ConversationRecord,
        conversation: Conversation,
        newest: Message,
        until: float,
    ) -> Outcome:
        self._store.put(
            record.waiting(
                until,
                "debounce: waiting for the customer to finish writing",
                conversation=conversation,
                newest=newest,
            )
        )
        return Outcome(conversation.id, Status.WAITING, f"debounce until {until:.0f}")

    def _skip(
        self,
        record: ConversationRecord,
        conversation: Conversation,
        reason: str,
        *,
        dropped: bool = False,
    ) -> Outcome:
        self._store.put(record.looked_at(conversation, reason))
        return Outcome(conversation.id, Status.DROPPED if dropped else Status.SKIPPED, reason)

    def _failed(self, conversation_id: str, exc: Exception) -> Outcome:
        reason = f"{type(exc).__name__}: {exc}"
        record = self._store.record_for(conversation_id)
        if _vanished(exc, conversation_id):
            self._store.put(record.skipped("conversation no longer exists"))
            return Outcome(conversation_id, Status.SKIPPED, "conversation no longer exists")
        if isinstance(exc, CircuitOpenError):  # not this message's fault: no attempt counted
            self._store.put(record.postponed(self._clock() + exc.retry_in + 1, reason))
            return Outcome(conversation_id, Status.POSTPONED, reason)
        if isinstance(exc, StateFileError):  # the database blinked (it answers again now)
            self._store.put(record.postponed(self._clock() + STATE_RETRY_SECONDS, reason))
            return Outcome(conversation_id, Status.POSTPONED, reason)
        attempts = record.attempts + 1
        dependency = dependency_of(exc)
        log.error(
            "conversation %s: attempt %d failed: %s",
            conversation_id,
            attempts,
            reason,
            extra={"conversation_id": conversation_id, "dependency": dependency.value},
        )
        if self._metrics is not None:
            self._metrics.errors.labels(dependency=dependency.value).inc()
        if attempts >= self._settings.max_attempts:
            dead = self._store.put(record.dead_letter(reason))
            self._sending.give_up(dead, attempts, reason)
            if self._metrics is not None:
                self._metrics.dead_letters.inc()
            return Outcome(
                conversation_id, Status.FAILED, f"gave up after {attempts} attempts: {reason}"
            )
        delay = min(
            self._settings.retry_max_seconds,
            self._settings.retry_base_seconds * 2 ** (attempts - 1),
        )
        self._store.put(record.will_retry(self._clock() + delay, reason))
        return Outcome(conversation_id, Status.FAILED, f"{reason} (retry in {delay:.0f} s)")

    def _log(self, outcome: Outcome) -> None:
        level = logging.WARNING if outcome.status is Status.FAILED else logging.INFO
        if outcome.status is Status.WAITING:
            level = logging.DEBUG
        confidence = f" confidence={outcome.draft.confidence:.2f}" if outcome.draft else ""
        log.log(
            level,
            "conversation %s: %s%s - %s",
            outcome.conversation_id,
            outcome.status.value,
            confidence,
            outcome.reason,
            extra={
                "conversation_id": outcome.conversation_id,
                "event": outcome.status.value,
                "reason": outcome.reason,
            },
        )


def _vanished(exc: Exception, conversation_id: str) -> bool:
    """Reading the conversation itself said 404: it was deleted (a 404 on a reply is not)."""
    return (
        isinstance(exc, IntercomError)
        and exc.status == 404
        and exc.method == "GET"
        and exc.path == f"/conversations/{conversation_id}"
    )
