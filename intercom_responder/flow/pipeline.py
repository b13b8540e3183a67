"""One conversation: read -> assess -> draft -> decide -> re-read -> act -> record.

Exactly once, in order of the dangers:
- before posting, the intent is recorded (`SENDING`); after a crash the conversation is
  searched for our own part before anything is sent again;
- a write that timed out or failed with 5xx is checked the same way, never retried blind;
- right before posting, the conversation is read again: a teammate who answered wins,
  and a customer who wrote again gets one answer covering everything;
- Intercom itself is the last word: a conversation whose last comment is ours, or that
  carries our hand-off note, is never answered again, whatever the state file says.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..adapters.breaker import CircuitBreaker, CircuitOpenError
from ..adapters.intercom import AmbiguousWriteError, IntercomClient, IntercomError
from ..adapters.responder import DraftRequest, Responder, ResponderError
from ..adapters.slack import ReviewError
from ..adapters.store import (
    AWAITING_USER_REPLY,
    FAILED,
    HANDED_OFF,
    IN_REVIEW,
    READY_FOR_RESPONSE,
    SENDING,
    SKIPPED,
    WAITING,
    ConversationRecord,
    StateStore,
)
from ..core.conversation import NOTE_MARKER, Conversation, ConversationFormatError, Message
from ..core.draft import Draft
from ..core.markup import text_to_html
from ..core.policy import Action, Decision, PolicyRules, check_before_drafting, decide
from ..core.triage import Assessment, Rules, assess

if TYPE_CHECKING:
    from ..adapters.memory import MemoryHit
    from ..adapters.metrics import Metrics
    from ..adapters.recall import Recall
    from .review_desk import ReviewDesk

log = logging.getLogger(__name__)

#: How often one poll drafts again when the customer keeps writing during drafting.
MAX_REDRAFTS = 3
#: Tries of one post whose outcome was unknown (checked in between).
MAX_POST_TRIES = 3
#: Context given to the model.
TRANSCRIPT_MESSAGES = 20
#: The window of MAX_AI_REPLIES_PER_HOUR.
AI_REPLY_WINDOW_SECONDS = 3600.0
#: Characters of the customer's messages used to search the answer memory.
MEMORY_QUERY_CHARS = 2000


@dataclass(frozen=True)
class PipelineSettings:
    rules: Rules
    policy: PolicyRules = field(default_factory=PolicyRules)
    max_attempts: int = 5
    handoff_team_id: str | None = None
    handoff_admin_id: str | None = None
    memory_top_k: int = 3
    memory_min_score: float = 0.5
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 1800.0
    session_ttl_seconds: float = 24 * 3600

    @property
    def admin_id(self) -> str:
        return self.rules.admin_id


@dataclass(frozen=True)
class Outcome:
    conversation_id: str
    status: str  # replied, noted, recovered, waiting, skipped, dropped, abandoned, failed, dry-run
    reason: str
    decision: Decision | None = None
    draft: Draft | None = None
    memory_hits: tuple[MemoryHit, ...] = ()


class Pipeline:
    def __init__(
        self,
        *,
        intercom: IntercomClient,
        responder: Responder,
        store: StateStore,
        settings: PipelineSettings,
        dry_run: bool = False,
        clock: Callable[[], float] = time.time,
        stopping: threading.Event | None = None,
        report: Callable[[Outcome], None] | None = None,
        recall: Recall | None = None,
        desk: ReviewDesk | None = None,
        metrics: Metrics | None = None,
        llm_breaker: CircuitBreaker | None = None,
    ) -> None:
        self.metrics = metrics
        self._llm_breaker = llm_breaker
        self._recall = recall
        self._desk = desk
        if desk is not None:
            desk.attach(self)
        self.intercom = intercom
        self._responder = responder
        self.store = store
        self.settings = settings
        self._dry_run = dry_run
        self._clock = clock
        self._stopping = stopping or threading.Event()
        self._report = report
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def handle(self, conversation_id: str) -> Outcome:
        """Never raises for a problem with this one conversation: it is recorded."""
        with self.lock_for(conversation_id):
            try:
                outcome = self._handle(conversation_id)
            except Exception as exc:  # one conversation must never stop the others
                outcome = self._failed(conversation_id, exc)
        self._log(outcome)
        if self._report is not None:
            self._report(outcome)
        return outcome

    # --- the steps ---------------------------------------------------------------------

    def _handle(self, conversation_id: str) -> Outcome:
        record = self.store.get(conversation_id)
        conversation = self.read(conversation_id)
        if record and record.state == SENDING and record.customer_part_id:
            landed = self._landed(conversation, record.action, record.customer_part_id)
            if landed is not None:
                if self._desk is not None:
                    self._desk.recovered(record)
                return self._done(
                    record, record.action or "reply", landed, conversation, recovered=True
                )
        if record and record.state == IN_REVIEW:
            if self._desk is None or self._desk.still_pending(record, conversation) is None:
                return self._skip(record, conversation, "waiting for the review in Slack")
            record = self.store.get(conversation_id)  # the stale review was recorded
        retrying = bool(record and record.retry_requested)
        assessment = assess(
            conversation, self.settings.rules, self._clock(), ignore_handoff=retrying
        )
        if (
            record is not None
            and record.state == FAILED
            and assessment.newest is not None
            and assessment.newest.part_id == record.customer_part_id
        ):
            return self._skip(record, conversation, "dead letter: see `python main.py dlq`")
        if assessment.newest is not None and assessment.wait_until is not None:
            return self._wait(record, conversation, assessment.newest, assessment.wait_until)
        if not assessment.answerable:
            return self._skip(record, conversation, assessment.skip_reason or "nothing to answer")
        return self._answer(conversation, assessment, record, ignore_handoff=retrying)

    def _answer(
        self,
        conversation: Conversation,
        assessment: Assessment,
        record: ConversationRecord | None,
        *,
        ignore_handoff: bool = False,
    ) -> Outcome:
        for _ in range(MAX_REDRAFTS):
            newest = assessment.newest
            assert newest is not None
            attempts = (
                record.attempts if record and record.customer_part_id == newest.part_id else 0
            )
            record = self.save_record(
                record,
                conversation.id,
                READY_FOR_RESPONSE,
                customer_part_id=newest.part_id,
                customer_message_at=newest.created_at,
                attempts=attempts,
                **seen_fields(conversation),
                due_at=None,
                action=None,
                retry_requested=None,
            )
            if self._llm_breaker is not None:
                self._llm_breaker.check()
            try:
                proposal = propose(
                    responder=self._responder,
                    recall=self._recall,
                    settings=self.settings,
                    conversation_id=conversation.id,
                    customer_name=conversation.customer_name,
                    transcript=tuple(conversation.transcript(TRANSCRIPT_MESSAGES)),
                    pending=assessment.pending,
                    ai_replies_last_hour=len(_recent_ai_replies(record, self._clock())),
                    session_id=self.store.session(conversation.id),
                )
            except ResponderError:
                if self._llm_breaker is not None:
                    self._llm_breaker.failure()
                raise
            if self._llm_breaker is not None:
                self._llm_breaker.success()
            draft, decision, hits = proposal.draft, proposal.decision, proposal.hits
            if self.metrics is not None and draft.latency_seconds > 0:
                self.metrics.llm_latency.observe(draft.latency_seconds)
            if draft.session_id:
                record = self.save_record(
                    record,
                    conversation.id,
                    READY_FOR_RESPONSE,
                    session_id=draft.session_id,
                    session_expires_at=self._clock() + self.settings.session_ttl_seconds,
                )
            if self._dry_run:  # remembered in memory only, so a long dry run shows it once
                self._skip(record, conversation, f"dry run: would {decision.action.value}")
                return Outcome(conversation.id, "dry-run", decision.reason, decision, draft, hits)
            if self._stopping.is_set():
                return Outcome(conversation.id, "abandoned", "shutting down before sending")
            fresh = self.read(conversation.id)
            again = assess(fresh, self.settings.rules, self._clock(), ignore_handoff=ignore_handoff)
            if again.answerable and again.newest and again.newest.part_id == newest.part_id:
                return self.act(fresh, newest, draft, decision, record, hits, again.pending)
            if (
                again.newest is not None
                and again.newest.part_id != newest.part_id
                and not again.skip_reason
            ):
                log.info(
                    "conversation %s: the customer wrote again while drafting; drafting again",
                    conversation.id,
                )
                if again.wait_until is not None:
                    return self._wait(record, fresh, again.newest, again.wait_until)
                conversation, assessment = fresh, again
                continue
            return self._skip(
                record,
                fresh,
                f"draft dropped: {again.skip_reason or 'nothing to answer any more'}",
                status="dropped",
            )
        latest = assessment.newest
        assert latest is not None
        return self._wait(record, conversation, latest, self._clock())

    def act(
        self,
        conversation: Conversation,
        newest: Message,
        draft: Draft,
        decision: Decision,
        record: ConversationRecord,
        hits: tuple[MemoryHit, ...],
        pending: tuple[Message, ...] = (),
    ) -> Outcome:
        if decision.action is Action.REVIEW and self._desk is not None and self._desk.available:
            try:
                return self._desk.request(
                    conversation, newest, draft, decision, record, pending, hits
                )
            except ReviewError as exc:
                log.warning(
                    "conversation %s: Slack review failed (%s); posting an internal note",
                    conversation.id,
                    exc,
                )
        action = _ACTIONS[decision.action]
        body = (
            text_to_html(draft.answer) if action == "reply" else review_note_html(draft, decision)
        )
        record = self.save_record(
            record,
            conversation.id,
            SENDING,
            action=action,
            customer_part_id=newest.part_id,
            memory_ids=[hit.id for hit in hits] or None,
        )
        part, after = self._post(conversation.id, action, body, newest.part_id)
        outcome = self._done(record, action, part, after, decision=decision, draft=draft)
        outcome = replace(outcome, memory_hits=hits)
        if action == "reply":
            try:
                self.intercom.mark_read(conversation.id)
            except IntercomError as exc:
                log.warning(
                    "conversation %s: replied, but marking it read failed: %s", conversation.id, exc
                )
        return outcome

    def _post(
        self, conversation_id: str, action: str, body: str, target_part_id: str
    ) -> tuple[Message | None, Conversation]:
        """Post once; after an unclear failure, look before posting again."""
        message_type = "comment" if action == "reply" else "note"
        last_error: AmbiguousWriteError | None = None
        for _ in range(MAX_POST_TRIES):
            try:
                started = self._clock()
                data = self.intercom.reply(
                    conversation_id,
                    admin_id=self.settings.admin_id,
                    body_html=body,
                    message_type=message_type,
                )
                after = replace(Conversation.from_api(data), fetched_at=started)
                return self._landed(after, action, target_part_id), after
            except AmbiguousWriteError as exc:
                log.warning(
                    "conversation %s: %s may have been applied (%s); checking before trying again",
                    conversation_id,
                    action,
                    exc,
                )
                last_error = exc
                after = self.read(conversation_id)
                landed = self._landed(after, action, target_part_id)
                if landed is not None:
                    return landed, after
        assert last_error is not None
        raise last_error

    def _done(
        self,
        record: ConversationRecord,
        action: str,
        part: Message | None,
        conversation: Conversation,
        *,
        recovered: bool = False,
        decision: Decision | None = None,
        draft: Draft | None = None,
    ) -> Outcome:
        state = AWAITING_USER_REPLY if action == "reply" else HANDED_OFF
        reason = decision.reason if decision else "found our own part after a restart"
        ai_replies = _recent_ai_replies(record, self._clock())
        if action == "reply":
            ai_replies.append(part.created_at if part and part.created_at else self._clock())
        self.save_record(
            record,
            conversation.id,
            state,
            reply_part_id=part.part_id if part else None,
            **seen_fields(conversation),
            attempts=0,
            last_error=None,
            due_at=None,
            reason=reason,
            ai_replies=ai_replies or None,
        )
        if action == "handoff":
            self._assign_for_handoff(conversation.id)
        self._count(action, decision, recovered)
        status = "recovered" if recovered else _STATUSES[action]
        return Outcome(conversation.id, status, reason, decision, draft)

    def _count(self, action: str, decision: Decision | None, recovered: bool) -> None:
        if self.metrics is None:
            return
        rule = decision.rule if decision is not None else ""
        if action == "reply":
            source = (
                "recovered" if recovered else (rule if rule in ("approved", "edited") else "ai")
            )
            self.metrics.replies_sent.labels(source=source).inc()
        elif action == "note":
            self.metrics.review_notes.inc()
        else:
            self.metrics.handoffs.labels(reason=rule or "other").inc()

    def _assign_for_handoff(self, conversation_id: str) -> None:
        """Put the conversation in a person's inbox; assignments are safe to repeat."""
        targets = [
            ("team", self.settings.handoff_team_id),
            ("admin", self.settings.handoff_admin_id),
        ]
        for kind, assignee in targets:
            if not assignee:
                continue
            try:
                self.intercom.assign(
                    conversation_id,
                    admin_id=self.settings.admin_id,
                    assignee_type=kind,
                    assignee_id=assignee,
                )
            except IntercomError as exc:
                log.warning(
                    "conversation %s: handed off, but assigning it to %s %s failed: %s",
                    conversation_id,
                    kind,
                    assignee,
                    exc,
                )

    def _wait(
        self,
        record: ConversationRecord | None,
        conversation: Conversation,
        newest: Message,
        until: float,
    ) -> Outcome:
        self.save_record(
            record,
            conversation.id,
            WAITING,
            customer_part_id=newest.part_id,
            customer_message_at=newest.created_at,
            due_at=until,
            **seen_fields(conversation),
            reason="debounce: waiting for the customer to finish writing",
        )
        return Outcome(conversation.id, "waiting", f"debounce until {until:.0f}")

    def _skip(
        self,
        record: ConversationRecord | None,
        conversation: Conversation,
        reason: str,
        *,
        status: str = "skipped",
    ) -> Outcome:
        keep = (
            record.state
            if record and record.state in (AWAITING_USER_REPLY, HANDED_OFF, FAILED, IN_REVIEW)
            else None
        )
        self.save_record(
            record,
            conversation.id,
            keep or SKIPPED,
            **seen_fields(conversation),
            due_at=None,
            reason=reason,
        )
        return Outcome(conversation.id, status, reason)

    def _failed(self, conversation_id: str, exc: Exception) -> Outcome:
        reason = f"{type(exc).__name__}: {exc}"
        record = self.store.get(conversation_id)
        vanished = (
            isinstance(exc, IntercomError)
            and exc.status == 404
            and exc.method == "GET"
            and exc.path == f"/conversations/{conversation_id}"
        )
        if vanished:
            self.save_record(
                record,
                conversation_id,
                SKIPPED,
                reason="conversation no longer exists",
                due_at=None,
            )
            return Outcome(conversation_id, "skipped", "conversation no longer exists")
        if isinstance(exc, CircuitOpenError):  # not this message's fault: no attempt counted
            self.save_record(
                record,
                conversation_id,
                record.state if record and record.state == SENDING else WAITING,
                due_at=self._clock() + exc.retry_in + 1,
                last_error=reason,
            )
            return Outcome(conversation_id, "postponed", reason)
        attempts = (record.attempts if record else 0) + 1
        log.error("conversation %s: attempt %d failed: %s", conversation_id, attempts, reason)
        if self.metrics is not None:
            self.metrics.errors.labels(dependency=_dependency(exc)).inc()
        if attempts >= self.settings.max_attempts:
            self.save_record(
                record, conversation_id, FAILED, attempts=attempts, last_error=reason, due_at=None
            )
            self._post_failure_note(conversation_id, record, attempts, reason)
            if self.metrics is not None:
                self.metrics.dead_letters.inc()
            return Outcome(
                conversation_id, "failed", f"gave up after {attempts} attempts: {reason}"
            )
        delay = min(
            self.settings.retry_max_seconds,
            self.settings.retry_base_seconds * 2 ** (attempts - 1),
        )
        self.save_record(
            record,
            conversation_id,
            WAITING,
            attempts=attempts,
            last_error=reason,
            due_at=self._clock() + delay,
        )
        return Outcome(conversation_id, "failed", f"{reason} (retry in {delay:.0f} s)")

    def _post_failure_note(
        self, conversation_id: str, record: ConversationRecord | None, attempts: int, reason: str
    ) -> None:
        if self._dry_run:
            return
        body = (
            f"<p><b>{NOTE_MARKER}</b> Could not answer this conversation automatically "
            f"after {attempts} attempts. Please answer it yourself.</p>"
            f"<p>Last error: {text_to_html(reason) or 'unknown'}</p>"
        )
        try:
            self.intercom.reply(
                conversation_id,
                admin_id=self.settings.admin_id,
                body_html=body,
                message_type="note",
            )
        except IntercomError as exc:
            log.error(
                "conversation %s: could not post the failure note either: %s", conversation_id, exc
            )

    # --- helpers -------------------------------------------------------------------------

    def read(self, conversation_id: str) -> Conversation:
        started = self._clock()
        data = self.intercom.get_conversation(conversation_id)
        return replace(Conversation.from_api(data), fetched_at=started)

    def _landed(
        self, conversation: Conversation, action: str | None, target_part_id: str
    ) -> Message | None:
        if action in ("note", "handoff"):
            return conversation.our_note_after(target_part_id, self.settings.admin_id)
        return conversation.our_reply_after(target_part_id, self.settings.admin_id)

    def save_record(
        self,
        record: ConversationRecord | None,
        conversation_id: str,
        state: str,
        **changes: object,
    ) -> ConversationRecord:
        base = record or ConversationRecord(conversation_id=conversation_id, state=state)
        updated = replace(base, state=state, **changes)  # type: ignore[arg-type]
        self.store.put(updated)
        return updated

    def lock_for(self, conversation_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(conversation_id, threading.Lock())

    def _log(self, outcome: Outcome) -> None:
        level = logging.WARNING if outcome.status == "failed" else logging.INFO
        if outcome.status == "waiting":
            level = logging.DEBUG
        confidence = f" confidence={outcome.draft.confidence:.2f}" if outcome.draft else ""
        log.log(
            level,
            "conversation %s: %s%s - %s",
            outcome.conversation_id,
            outcome.status,
            confidence,
            outcome.reason,
            extra={
                "conversation_id": outcome.conversation_id,
                "event": outcome.status,
                "reason": outcome.reason,
            },
        )


@dataclass(frozen=True)
class Proposal:
    draft: Draft
    decision: Decision
    hits: tuple[MemoryHit, ...] = ()


def propose(
    *,
    responder: Responder,
    recall: Recall | None,
    settings: PipelineSettings,
    conversation_id: str,
    customer_name: str,
    transcript: tuple[Message, ...],
    pending: tuple[Message, ...],
    ai_replies_last_hour: int = 0,
    session_id: str | None = None,
) -> Proposal:
    """Memory, draft and decision: the daemon and `ask` share exactly this."""
    early = check_before_drafting(settings.policy, ai_replies_last_hour)
    if early is not None:
        return Proposal(Draft(answer="", confidence=0.0, reasoning="no draft was made"), early)
    hits: tuple[MemoryHit, ...] = ()
    if recall is not None and settings.memory_top_k > 0:
        query = "\n".join(m.text for m in pending)[-MEMORY_QUERY_CHARS:]
        hits = tuple(
            recall.search(query, limit=settings.memory_top_k, min_score=settings.memory_min_score)
        )
    draft = responder.draft(
        DraftRequest(
            conversation_id=conversation_id,
            customer_name=customer_name,
            transcript=transcript,
            pending=pending,
            session_id=session_id,
            known_answers=hits,
        )
    )
    return Proposal(draft, decide(draft, [m.text for m in pending], settings.policy), hits)


def _dependency(exc: Exception) -> str:
    if isinstance(exc, IntercomError | ConversationFormatError):
        return "intercom"
    if isinstance(exc, ResponderError):
        return "llm"
    return "internal"


_ACTIONS = {Action.REPLY: "reply", Action.REVIEW: "note", Action.HANDOFF: "handoff"}
_STATUSES = {"reply": "replied", "note": "noted", "handoff": "handed off"}


def _recent_ai_replies(record: ConversationRecord | None, now: float) -> list[float]:
    if record is None or not record.ai_replies:
        return []
    return [t for t in record.ai_replies if now - t < AI_REPLY_WINDOW_SECONDS]


def seen_fields(conversation: Conversation) -> dict[str, object]:
    """Record which version of the conversation was read, and when (see triage)."""
    return {"seen_updated_at": conversation.updated_at, "seen_at": conversation.fetched_at}


def review_note_html(draft: Draft, decision: Decision) -> str:
    """The internal note a teammate sees: why, how sure, and the draft, all escaped."""
    headline = (
        "Handed to the team: please answer this customer. The AI stays out of this "
        "conversation until a teammate has replied."
        if decision.action is Action.HANDOFF
        else "Draft reply for review: it was <b>not</b> sent to the customer."
    )
    parts = [
        f"<p><b>{NOTE_MARKER}</b> {headline}</p>",
        f"<p><b>Why a human:</b> {_inline(decision.reason)}</p>",
        f"<p><b>Confidence:</b> {draft.confidence:.2f}</p>",
    ]
    if draft.reasoning:
        parts.append(f"<p><b>Model's reasoning:</b> {_inline(draft.reasoning)}</p>")
    if draft.answer.strip():
        parts.append("<p><b>Draft:</b></p>")
        parts.append(text_to_html(draft.answer))
    else:
        parts.append("<p>(no draft)</p>")
    return "".join(parts)


def _inline(text: str) -> str:
    """Escaped text for inside a paragraph."""
    html = text_to_html(text)
    if html.startswith("<p>") and html.endswith("</p>") and html.count("<p>") == 1:
        return html[3:-4]
    return html.replace("<p>", "").replace("</p>", "<br>")
