"""Memory, draft and decision: what the daemon proposes for a customer's messages.

The daemon and `python main.py ask` share exactly this, so what `ask` prints is what
the daemon would do with the same message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..adapters.images import ImageFetcher, ImageProblem
from ..adapters.responder import DraftRequest, Responder
from ..core.conversation import Message
from ..core.draft import Draft
from ..core.knowledge import cite, used_pieces
from ..core.language import detect_language
from ..core.loops import repeats_the_question
from ..core.policy import Decision, PolicyRules, check_before_drafting, decide
from ..defaults import (
    KNOWLEDGE_MIN_SCORE,
    KNOWLEDGE_TOP_K,
    MAX_IMAGES_PER_DRAFT,
    MEMORY_MIN_SCORE,
    MEMORY_QUERY_CHARS,
    MEMORY_TOP_K,
)

if TYPE_CHECKING:
    from ..adapters.memory import KnowledgeHit, MemoryHit
    from ..adapters.recall import Recall
    from ..core.business_hours import BusinessHours


@dataclass(frozen=True)
class DraftingSettings:
    policy: PolicyRules = field(default_factory=PolicyRules)
    memory_top_k: int = MEMORY_TOP_K
    memory_min_score: float = MEMORY_MIN_SCORE
    knowledge_top_k: int = KNOWLEDGE_TOP_K
    knowledge_min_score: float = KNOWLEDGE_MIN_SCORE
    cite_sources: bool = True
    hours: BusinessHours | None = None  # BUSINESS_HOURS; None: always open
    admin_id: str = ""  # INTERCOM_ADMIN_ID: whose comments are our answers (loops)
    threshold_away: float | None = None  # CONFIDENCE_THRESHOLD_AWAY; None: the same


@dataclass(frozen=True)
class Proposal:
    draft: Draft
    decision: Decision
    hits: tuple[MemoryHit, ...] = ()
    pieces: tuple[KnowledgeHit, ...] = ()  # the documentation the draft was given

    def used_pieces(self) -> list[KnowledgeHit]:
        """The pieces the draft says it used (numbers it was not given are ignored)."""
        return used_pieces(self.pieces, self.draft.sources)


class Drafter:
    def __init__(
        self,
        responder: Responder,
        *,
        recall: Recall | None = None,
        settings: DraftingSettings = DraftingSettings(),
        hours_clock: Callable[[], float] | None = None,
        images: ImageFetcher | None = None,
    ) -> None:
        self._images = images  # VISION: the pending messages' images go to the model
        self._hours_clock = hours_clock or time.time  # the time for BUSINESS_HOURS
        self._responder = responder
        self._recall = recall
        self._settings = settings

    def propose(
        self,
        *,
        conversation_id: str,
        customer_name: str,
        transcript: Sequence[Message],
        pending: Sequence[Message],
        ai_replies_last_hour: int = 0,
        session_id: str | None = None,
        not_answers: frozenset[str] = frozenset(),
    ) -> Proposal:
        settings = self._settings
        early = check_before_drafting(
            settings.policy,
            ai_replies_last_hour,
            language=detect_language("\n".join(m.text for m in pending)),
            repeated=repeats_the_question(transcript, pending, settings.admin_id, not_answers),
        )
        if early is not None:  # no model call is spent on a conversation in a loop
            return Proposal(Draft(answer="", confidence=0.0, reasoning="no draft was made"), early)
        hits, pieces = self._look_up(pending)
        images, unreadable = self._look_at(pending)
        draft = self._responder.draft(
            DraftRequest(
                conversation_id=conversation_id,
                customer_name=customer_name,
                transcript=tuple(transcript),
                pending=tuple(pending),
                session_id=session_id,
                known_answers=hits,
                knowledge=pieces,
                images=images,
                unreadable=unreadable,
            )
        )
        if settings.cite_sources and draft.sources:
            draft = replace(draft, answer=cite(draft.answer, used_pieces(pieces, draft.sources)))
        decision = decide(draft, [m.text for m in pending], self._policy_now())
        return Proposal(draft, decision, hits, pieces)

    def _look_at(self, pending: Sequence[Message]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(data URLs, "name (why not)"): the images of the pending messages, fetched by
        the daemon itself with a deadline and a size limit, at most MAX_IMAGES_PER_DRAFT."""
        if self._images is None:
            return (), ()
        seen: list[str] = []
        unreadable: list[str] = []
        for attachment in (a for m in pending for a in m.attachments if a.is_image):
            if len(seen) >= MAX_IMAGES_PER_DRAFT:
                unreadable.append(f"{attachment.name} (more than {MAX_IMAGES_PER_DRAFT} images)")
                continue
            got = self._images.fetch(attachment.url, name=attachment.name)
            if isinstance(got, ImageProblem):
                unreadable.append(f"{got.name} ({got.reason})")
            else:
                seen.append(got.data_url())
        return tuple(seen), tuple(unreadable)

    def _policy_now(self) -> PolicyRules:
        """Outside BUSINESS_HOURS, CONFIDENCE_THRESHOLD_AWAY decides what is sent alone."""
        settings = self._settings
        hours, away = settings.hours, settings.threshold_away
        if hours is None or away is None or hours.is_open(self._hours_clock()):
            return settings.policy
        return replace(settings.policy, threshold=away)

    def _look_up(
        self, pending: Sequence[Message]
    ) -> tuple[tuple[MemoryHit, ...], tuple[KnowledgeHit, ...]]:
        """Verified answers and documentation for all pending messages, searched as one
        question (a burst is one question), each kind with its own limit and score."""
        settings = self._settings
        if self._recall is None:
            return (), ()
        query = "\n".join(m.text for m in pending)[-MEMORY_QUERY_CHARS:]
        hits, pieces = self._recall.lookup(
            query,
            answers=(settings.memory_top_k, settings.memory_min_score),
            pieces=(settings.knowledge_top_k, settings.knowledge_min_score),
        )
        return tuple(hits), tuple(pieces)
