"""Pending reviews: post a draft to Slack, carry out Approve / Edit / Reject, expire.

Everything needed to act on a review lives in the state store (`IN_REVIEW` and the
`review` entry), so a click that arrives after a restart still works. A decision
takes the conversation's lock and checks that the review is still pending before
anything happens: a double click, two people at once or a replayed envelope find it
decided and change nothing. Sending goes through the pipeline's `act`, with its
exactly-once bookkeeping, after reading the conversation again: if the customer wrote
again or a teammate answered, nothing is sent and the Slack message says "stale".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..adapters.breaker import CircuitBreaker
from ..adapters.intercom import IntercomError
from ..adapters.slack import ReviewAction, ReviewError, ReviewRef, SlackReview
from ..adapters.store import IN_REVIEW, SKIPPED, WAITING, ConversationRecord
from ..core.conversation import Conversation, Message
from ..core.draft import Draft
from ..core.policy import Action, Decision
from ..core.slack_blocks import EDIT, REJECT, ReviewContent, mention, outcome_text
from ..core.triage import assess

if TYPE_CHECKING:
    from ..adapters.memory import MemoryHit
    from ..adapters.recall import Recall
    from .pipeline import Outcome, Pipeline

log = logging.getLogger(__name__)

INTERCOM_APP_URL = "https://app.intercom.com"


class ReviewDesk:
    def __init__(
        self,
        *,
        slack: SlackReview,
        timeout_minutes: float,
        recall: Recall | None = None,
        workspace_id: str | None = None,
        clock: Callable[[], float] = time.time,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._breaker = breaker
        self.slack = slack
        self._timeout = timeout_minutes * 60
        self._recall = recall
        self._workspace_id = workspace_id
        self._workspace_looked_up = workspace_id is not None
        self._clock = clock
        self._pipeline: Pipeline | None = None

    def attach(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    @property
    def available(self) -> bool:
        """Connected, and Slack has not been failing lately (then: internal notes)."""
        return self.slack.available and (self._breaker is None or self._breaker.allows())

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            raise RuntimeError("ReviewDesk used before attach(pipeline)")
        return self._pipeline

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
    ) -> Outcome:
        """Post the draft for review; raises `ReviewError` so the caller can fall back."""
        from .pipeline import Outcome, seen_fields

        now = self._clock()
        question = "\n".join(m.text for m in pending)
        review: dict[str, Any] = {
            "customer_part_id": newest.part_id,
            "customer_name": conversation.customer_name,
            "question": question,
            "draft": draft.answer,
            "confidence": draft.confidence,
            "reasoning": draft.reasoning,
            "reason": decision.reason,
            "url": self._conversation_url(conversation.id),
            "requested_at": now,
            "expires_at": now + self._timeout,
        }
        try:
            ref = self.slack.post(_content(conversation.id, review))
        except ReviewError:
            self._slack_failed()
            raise
        if self._breaker is not None:
            self._breaker.success()
        review.update({"channel": ref.channel, "ts": ref.ts})
        self.pipeline.save_record(
            record,
            conversation.id,
            IN_REVIEW,
            customer_part_id=newest.part_id,
            review=review,
            memory_ids=[hit.id for hit in hits] or None,
            **seen_fields(conversation),
            reason=decision.reason,
        )
        if self.pipeline.metrics is not None:
            self.pipeline.metrics.reviews_requested.inc()
        return Outcome(conversation.id, "in review", decision.reason, decision, draft, hits)

    def still_pending(self, record: ConversationRecord, conversation: Conversation) -> str | None:
        """For a conversation in review that changed: None if the review still stands."""
        review = record.review or {}
        assessment = assess(conversation, self.pipeline.settings.rules, self._clock())
        newest = assessment.newest
        same = newest is not None and newest.part_id == review.get("customer_part_id")
        if same and assessment.skip_reason is None:
            return None
        reason = _stale_reason(assessment.newest, review, assessment.skip_reason)
        self._show(record, "Stale", detail=f"{reason}; nothing was sent")
        return reason

    def recovered(self, record: ConversationRecord) -> None:
        """A reviewed reply was found sent after a restart: close the Slack message."""
        if record.review and record.review.get("ts"):
            self._show(record, "Sent", detail="the reply went out (confirmed after a restart)")

    # --- from Slack (ReviewHooks) -----------------------------------------------------

    def draft_for_review(self, conversation_id: str, review_ts: str) -> str | None:
        record = self.pipeline.store.get(conversation_id)
        if not _pending(record, review_ts):
            return None
        assert record is not None and record.review is not None
        return str(record.review.get("draft") or "")

    def decide_review(self, action: ReviewAction) -> str | None:
        pipeline = self.pipeline
        with pipeline.lock_for(action.conversation_id):
            record = pipeline.store.get(action.conversation_id)
            if not _pending(record, action.review_ts):
                state = record.state.lower().replace("_", " ") if record else "unknown"
                return f"Nothing to do: this review was already decided ({state})."
            assert record is not None and record.review is not None
            try:
                return self._carry_out(action, record, record.review)
            except (IntercomError, ReviewError) as exc:
                log.error(
                    "conversation %s: review %s by %s failed: %s",
                    action.conversation_id,
                    action.kind,
                    action.user_id,
                    exc,
                )
                return f"That did not work ({exc}). Nothing was changed; try again."

    def _carry_out(
        self, action: ReviewAction, record: ConversationRecord, review: dict[str, Any]
    ) -> str | None:
        pipeline = self.pipeline
        now = self._clock()
        fresh = pipeline.read(action.conversation_id)
        assessment = assess(fresh, pipeline.settings.rules, now)
        newest = assessment.newest
        current = newest is not None and newest.part_id == review.get("customer_part_id")
        who = mention(action.user_id)
        if action.kind == REJECT:
            if newest is not None and current:
                draft = _reviewed_draft(review)
                decision = Decision(
                    Action.HANDOFF, f"the draft was rejected in Slack by {who}", "review_rejected"
                )
                pipeline.act(fresh, newest, draft, decision, record, ())
            else:
                self._stale(record, fresh, newest, assessment.skip_reason)
            self._show(record, "Rejected", action.user_id, "nothing was sent; handed to the team")
            return None
        if not current or assessment.skip_reason is not None or newest is None:
            reason = self._stale(record, fresh, newest, assessment.skip_reason)
            self._show(record, "Stale", action.user_id, f"{reason}; nothing was sent")
            return f"Nothing was sent: {reason}."
        edited = action.kind == EDIT
        text = (action.text or "").strip() if edited else str(review.get("draft") or "")
        draft = _reviewed_draft(review, answer=text)
        verb = "edited" if edited else "approved"
        decision = Decision(Action.REPLY, f"{verb} in Slack by {action.user_id}", verb)
        pipeline.act(fresh, newest, draft, decision, record, ())
        detail = "sent to the customer"
        if edited:
            detail += ":\n" + _quote(text)
        self._show(record, verb.capitalize(), action.user_id, detail)
        if self._recall is not None:
            self._recall.remember(
                str(review.get("question") or ""),
                text,
                source=verb,
                conversation_id=action.conversation_id,
            )
        return None

    # --- expiry (from the poller, every cycle) ----------------------------------------------

    def expire_due(self) -> int:
        """Hand off reviews nobody decided within REVIEW_TIMEOUT_MINUTES."""
        expired = 0
        now = self._clock()
        for record in self.pipeline.store.in_review():
            review = record.review or {}
            if float(review.get("expires_at") or 0) > now:
                continue
            with self.pipeline.lock_for(record.conversation_id):
                current = self.pipeline.store.get(record.conversation_id)
                if not _pending(current, str(review.get("ts") or "")):
                    continue
                assert current is not None
                try:
                    self._expire(current, review)
                    expired += 1
                except (IntercomError, ReviewError) as exc:
                    log.error(
                        "conversation %s: review expiry failed: %s", record.conversation_id, exc
                    )
        return expired

    def _expire(self, record: ConversationRecord, review: dict[str, Any]) -> None:
        pipeline = self.pipeline
        fresh = pipeline.read(record.conversation_id)
        assessment = assess(fresh, pipeline.settings.rules, self._clock())
        newest = assessment.newest
        minutes = self._timeout / 60
        if newest is not None and newest.part_id == review.get("customer_part_id"):
            draft = _reviewed_draft(review)
            decision = Decision(
                Action.HANDOFF,
                f"nobody decided on the review in Slack within {minutes:g} minutes "
                "(REVIEW_TIMEOUT_MINUTES)",
                "review_expired",
            )
            pipeline.act(fresh, newest, draft, decision, record, ())
            self._show(
                record, "Expired", detail=f"no decision within {minutes:g} min; handed to the team"
            )
        else:
            reason = self._stale(record, fresh, newest, assessment.skip_reason)
            self._show(record, "Expired", detail=f"{reason}; nothing was sent")

    # --- helpers --------------------------------------------------------------------------

    def _stale(
        self,
        record: ConversationRecord,
        fresh: Conversation,
        newest: Message | None,
        skip_reason: str | None,
    ) -> str:
        """Record a review overtaken by events; a newer customer message is answered anew."""
        review = record.review or {}
        reason = _stale_reason(newest, review, skip_reason)
        customer_wrote = newest is not None and newest.part_id != review.get("customer_part_id")
        self.pipeline.save_record(
            record,
            fresh.id,
            WAITING if customer_wrote and skip_reason is None else SKIPPED,
            due_at=self._clock() if customer_wrote else None,
            reason=f"review stale: {reason}",
        )
        return reason

    def _show(
        self,
        record: ConversationRecord,
        verb: str,
        user_id: str | None = None,
        detail: str = "",
    ) -> None:
        review = record.review or {}
        if self.pipeline.metrics is not None:
            self.pipeline.metrics.review_outcomes.labels(outcome=verb.lower()).inc()
        if not review.get("ts"):
            return
        ref = ReviewRef(channel=str(review.get("channel")), ts=str(review["ts"]))
        text = outcome_text(verb, user_id=user_id, at=self._clock(), detail=detail)
        try:
            self.slack.show_outcome(ref, _content(record.conversation_id, review), text)
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
        if self.pipeline.metrics is not None:
            self.pipeline.metrics.errors.labels(dependency="slack").inc()

    def _conversation_url(self, conversation_id: str) -> str | None:
        if not self._workspace_looked_up:
            self._workspace_looked_up = True
            try:
                app = self.pipeline.intercom.me().get("app")
                code = app.get("id_code") if isinstance(app, dict) else None
                self._workspace_id = str(code) if code else None
            except IntercomError as exc:
                log.warning("could not look up the Intercom workspace for links: %s", exc)
        if not self._workspace_id:
            return None
        return (
            f"{INTERCOM_APP_URL}/a/inbox/{self._workspace_id}/inbox/conversation/{conversation_id}"
        )


def _pending(record: ConversationRecord | None, review_ts: str) -> bool:
    return (
        record is not None
        and record.state == IN_REVIEW
        and record.review is not None
        and str(record.review.get("ts")) == review_ts
    )


def _stale_reason(newest: Message | None, review: dict[str, Any], skip_reason: str | None) -> str:
    if newest is not None and newest.part_id != review.get("customer_part_id"):
        return "the customer wrote again since the draft"
    if skip_reason and skip_reason.startswith("last comment"):
        return "a teammate answered since the draft"
    return skip_reason or "the conversation changed since the draft"


def _reviewed_draft(review: dict[str, Any], answer: str | None = None) -> Draft:
    return Draft(
        answer=str(review.get("draft") or "") if answer is None else answer,
        confidence=float(review.get("confidence") or 0.0),
        reasoning=str(review.get("reasoning") or ""),
    )


def _content(conversation_id: str, review: dict[str, Any]) -> ReviewContent:
    return ReviewContent(
        conversation_id=conversation_id,
        customer_name=str(review.get("customer_name") or ""),
        customer_text=str(review.get("question") or ""),
        draft=str(review.get("draft") or ""),
        confidence=float(review.get("confidence") or 0.0),
        reasoning=str(review.get("reasoning") or ""),
        reason=str(review.get("reason") or ""),
        conversation_url=review.get("url") or None,
    )


def _quote(text: str) -> str:
    from ..core.slack_blocks import SECTION_LIMIT, quoted

    return quoted(text, SECTION_LIMIT // 2)
