"""Pending reviews: post a draft to Slack, carry out Approve / Edit / Reject, expire.

Everything needed to act on a review lives in the state store (`IN_REVIEW` and its
`PendingReview`), so a click that arrives after a restart still works. A decision
takes the conversation's lock and checks that the review is still pending before
anything happens: a double click, two people at once or a replayed envelope find it
decided and change nothing. Sending goes through `Sending`, with its exactly-once
bookkeeping, after reading the conversation again: if the customer wrote again or a
teammate answered, nothing is sent and the Slack message says "stale".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..adapters.intercom import IntercomClient, IntercomError
from ..adapters.slack import ReviewAction, ReviewError, ReviewRef, SlackWeb
from ..core.conversation import Conversation, Message
from ..core.draft import Draft
from ..core.policy import Action, Decision
from ..core.records import ConversationRecord, PendingReview, State
from ..core.slack_blocks import (
    EDIT,
    REJECT,
    SECTION_LIMIT,
    ReviewContent,
    mention,
    outcome_text,
    quoted,
)
from ..core.triage import Recheck, Rules, recheck
from ..defaults import CLAIM_WAIT_SECONDS
from ..errors import IntercomResponderError
from .locks import ClaimedElsewhereError, ConversationLocks
from .outcome import Outcome, Status
from .sending import Sending

if TYPE_CHECKING:
    from ..adapters.breaker import CircuitBreaker
    from ..adapters.memory import MemoryHit
    from ..adapters.metrics import Metrics
    from ..adapters.recall import Recall
    from ..adapters.store import Store
    from ..core.business_hours import BusinessHours

log = logging.getLogger(__name__)

INTERCOM_APP_URL = "https://app.intercom.com"


class ReviewDesk:
    def __init__(
        self,
        *,
        slack: SlackWeb,
        connected: Callable[[], bool],
        sending: Sending,
        store: Store,
        locks: ConversationLocks,
        rules: Rules,
        intercom: IntercomClient,
        timeout_minutes: float,
        recall: Recall | None = None,
        workspace_id: str | None = None,
        metrics: Metrics | None = None,
        breaker: CircuitBreaker | None = None,
        hours: BusinessHours | None = None,
        clock: Callable[[], float] = time.time,
        hours_clock: Callable[[], float] | None = None,
    ) -> None:
        self._hours = hours  # a review expires after REVIEW_TIMEOUT_MINUTES of open time
        self._review_clock = hours_clock or clock  # when reviews are asked for and expire
        self._slack = slack
        self._connected = connected
        self._sending = sending
        self._store = store
        self._locks = locks
        self._rules = rules
        self._intercom = intercom
        self._timeout = timeout_minutes * 60
        self._recall = recall
        self._workspace_id = workspace_id
        self._workspace_looked_up = workspace_id is not None
        self._metrics = metrics
        self._breaker = breaker
        self._clock = clock

    @property
    def available(self) -> bool:
        """Connected, and Slack has not been failing lately (then: internal notes)."""
        return self._connected() and (self._breaker is None or self._breaker.allows())

    # --- from the pipeline (the conversation lock is held) -------------------------------

    def request(
        self,
        conversation: Conversation,
        newest: Message,
        draft: Draft,
        decision: Decision,
        record: ConversationRecord,
        pending: tuple[Message, ...],
        hits: tuple[MemoryHit, ...],
        knowledge: tuple[str, ...] = (),
    ) -> Outcome:
        """Post the draft for review; raises `ReviewError` so the caller can fall back."""
        now = self._review_clock()
        review = PendingReview(
            customer_part_id=newest.part_id,
            customer_name=conversation.customer_name,
            question="\n".join(m.text for m in pending),
            draft=draft.answer,
            confidence=draft.confidence,
            reasoning=draft.reasoning,
            reason=decision.reason,
            url=self._conversation_url(conversation.id),
            requested_at=now,
            expires_at=(
                self._hours.after_open_seconds(now, self._timeout)
                if self._hours is not None
                else now + self._timeout
            ),
            knowledge=knowledge,
        )
        try:
            ref = self._slack.post(_content(conversation.id, review))
        except ReviewError:
            self._slack_failed()
            raise
        if self._breaker is not None:
            self._breaker.success()
        reviewing = self._store.put(
            record.in_review(
                review.posted(ref.channel, ref.ts),
                conversation,
                reason=decision.reason,
                memory_ids=(hit.id for hit in hits),
            )
        )
        self._sending.tell_away(reviewing, conversation)
        if self._metrics is not None:
            self._metrics.reviews_requested.inc()
        return Outcome(conversation.id, Status.IN_REVIEW, decision.reason, decision, draft, hits)

    def still_pending(self, record: ConversationRecord, conversation: Conversation) -> bool:
        """For a conversation in review that changed: False (and shown stale) if overtaken."""
        review = record.review
        if review is None:
            return False
        look = recheck(conversation, self._rules, self._clock(), review.customer_part_id)
        if look.current:
            return True
        self._stale(record, look)
        self._show(record, "Stale", detail=f"{look.stale_reason()}; nothing was sent")
        return False

    def recovered(self, record: ConversationRecord) -> None:
        """A reviewed reply was found sent after a restart: close the Slack message."""
        if record.review is not None and record.review.ts:
            self._show(record, "Sent", detail="the reply went out (confirmed after a restart)")

    # --- from Slack (ReviewHooks) -----------------------------------------------------

    def draft_for_review(self, conversation_id: str, review_ts: str) -> str | None:
        review = _pending(self._store.get(conversation_id), review_ts)
        return review.draft if review is not None else None

    def decide_review(self, action: ReviewAction) -> str | None:
        try:
            return self._decide(action)
        except ClaimedElsewhereError:
            return "Another replica is working on this conversation right now; try again."

    def _decide(self, action: ReviewAction) -> str | None:
        with self._locks.hold(action.conversation_id, wait=CLAIM_WAIT_SECONDS):
            record = self._store.get(action.conversation_id)
            review = _pending(record, action.review_ts)
            if record is None or review is None:
                state = record.state.lower().replace("_", " ") if record else "unknown"
                return f"Nothing to do: this review was already decided ({state})."
            try:
                return self._carry_out(action, record, review)
            except IntercomResponderError as exc:  # Intercom, Slack, a breaker
                log.error(
                    "conversation %s: review %s by %s failed: %s",
                    action.conversation_id,
                    action.kind,
                    action.user_id,
                    exc,
                )
                return f"That did not work ({exc}). Nothing was changed; try again."

    def _carry_out(
        self, action: ReviewAction, record: ConversationRecord, review: PendingReview
    ) -> str | None:
        look = self._sending.recheck(action.conversation_id, review.customer_part_id)
        newest = look.assessment.newest
        if action.kind == REJECT:
            if newest is not None and look.current:
                decision = Decision(
                    Action.HANDOFF,
                    f"the draft was rejected in Slack by {mention(action.user_id)}",
                    "review_rejected",
                )
                self._sending.send(
                    look.conversation, newest, review.reviewed_draft(), decision, record
                )
            else:
                self._stale(record, look)
            self._show(record, "Rejected", action.user_id, "nothing was sent; handed to the team")
            return None
        if newest is None or not look.current:
            reason = self._stale(record, look)
            self._show(record, "Stale", action.user_id, f"{reason}; nothing was sent")
            return f"Nothing was sent: {reason}."
        edited = action.kind == EDIT
        text = (action.text or "").strip() if edited else review.draft
        verb = "edited" if edited else "approved"
        decision = Decision(Action.REPLY, f"{verb} in Slack by {action.user_id}", verb)
        self._sending.send(look.conversation, newest, review.reviewed_draft(text), decision, record)
        detail = "sent to the customer"
        if edited:
            detail += ":\n" + quoted(text, SECTION_LIMIT // 2)
        self._show(record, verb.capitalize(), action.user_id, detail)
        if self._recall is not None:
            self._recall.remember(
                review.question, text, source=verb, conversation_id=action.conversation_id
            )
        return None

    # --- expiry (from the poller, every cycle) ----------------------------------------------

    def expire_due(self) -> int:
        """Hand off reviews nobody decided within REVIEW_TIMEOUT_MINUTES."""
        expired = 0
        now = self._review_clock()
        for record in self._store.in_review():
            if record.review is None or record.review.expires_at > now:
                continue
            try:
                expired += self._expire_one(record.conversation_id, record.review.ts or "")
            except ClaimedElsewhereError:
                continue  # a replica is on it; the next expiry run looks again
        return expired

    def _expire_one(self, conversation_id: str, review_ts: str) -> int:
        with self._locks.hold(conversation_id):
            current = self._store.get(conversation_id)
            review = _pending(current, review_ts)
            if current is None or review is None:
                return 0
            try:
                self._expire(current, review)
            except IntercomResponderError as exc:
                log.error("conversation %s: review expiry failed: %s", conversation_id, exc)
                return 0
            return 1

    def _expire(self, record: ConversationRecord, review: PendingReview) -> None:
        look = self._sending.recheck(record.conversation_id, review.customer_part_id)
        newest = look.assessment.newest
        minutes = self._timeout / 60
        if newest is not None and look.current:
            decision = Decision(
                Action.HANDOFF,
                f"nobody decided on the review in Slack within {minutes:g} minutes "
                "(REVIEW_TIMEOUT_MINUTES)",
                "review_expired",
            )
            self._sending.send(look.conversation, newest, review.reviewed_draft(), decision, record)
            self._show(
                record, "Expired", detail=f"no decision within {minutes:g} min; handed to the team"
            )
        else:
            reason = self._stale(record, look)
            self._show(record, "Expired", detail=f"{reason}; nothing was sent")

    # --- helpers --------------------------------------------------------------------------

    def _stale(self, record: ConversationRecord, look: Recheck) -> str:
        """Record a review overtaken by events; a newer customer message is answered anew."""
        reason = look.stale_reason()
        if look.customer_wrote_again and look.assessment.skip is None:
            self._store.put(record.waiting(self._clock(), f"review stale: {reason}"))
        else:
            self._store.put(record.skipped(f"review stale: {reason}"))
        return reason

    def _show(
        self,
        record: ConversationRecord,
        verb: str,
        user_id: str | None = None,
        detail: str = "",
    ) -> None:
        if self._metrics is not None:
            self._metrics.review_outcomes.labels(outcome=verb.lower()).inc()
        review = record.review
        if review is None or not review.ts:
            return
        ref = ReviewRef(channel=str(review.channel), ts=review.ts)
        text = outcome_text(verb, user_id=user_id, at=self._clock(), detail=detail)
        try:
            self._slack.show_outcome(ref, _content(record.conversation_id, review), text)
        except ReviewError as exc:
            self._slack_failed()
            log.warning(
                "conversation %s: could not update the Slack message: %s",
                record.conversation_id,
                exc,
            )

    def _slack_failed(self) -> None:
        if self._breaker is not None:
            self._breaker.failure()
        if self._metrics is not None:
            self._metrics.errors.labels(dependency=ReviewError.dependency).inc()

    def _conversation_url(self, conversation_id: str) -> str | None:
        if not self._workspace_looked_up:
            self._workspace_looked_up = True
            try:
                app = self._intercom.me().get("app")
                code = app.get("id_code") if isinstance(app, dict) else None
                self._workspace_id = str(code) if code else None
            except IntercomError as exc:
                log.warning("could not look up the Intercom workspace for links: %s", exc)
        if not self._workspace_id:
            return None
        return (
            f"{INTERCOM_APP_URL}/a/inbox/{self._workspace_id}/inbox/conversation/{conversation_id}"
        )


def _pending(record: ConversationRecord | None, review_ts: str) -> PendingReview | None:
    """The review of `record` if it is still waiting for a decision on message `review_ts`."""
    if record is None or record.state is not State.IN_REVIEW or record.review is None:
        return None
    return record.review if record.review.ts == review_ts else None


def _content(conversation_id: str, review: PendingReview) -> ReviewContent:
    return ReviewContent(
        conversation_id=conversation_id,
        customer_name=review.customer_name,
        customer_text=review.question,
        draft=review.draft,
        confidence=review.confidence,
        reasoning=review.reasoning,
        reason=review.reason,
        conversation_url=review.url,
        knowledge=review.knowledge,
    )
