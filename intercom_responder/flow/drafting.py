"""Memory, draft and decision: what the daemon proposes for a customer's messages.

The daemon and `python main.py ask` share exactly this, so what `ask` prints is what
the daemon would do with the same message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..adapters.responder import DraftRequest, Responder
from ..core.conversation import Message
from ..core.draft import Draft
from ..core.policy import Decision, PolicyRules, check_before_drafting, decide
from ..defaults import MEMORY_MIN_SCORE, MEMORY_QUERY_CHARS, MEMORY_TOP_K

if TYPE_CHECKING:
    from ..adapters.memory import MemoryHit
    from ..adapters.recall import Recall


@dataclass(frozen=True)
class DraftingSettings:
    policy: PolicyRules = field(default_factory=PolicyRules)
    memory_top_k: int = MEMORY_TOP_K
    memory_min_score: float = MEMORY_MIN_SCORE


@dataclass(frozen=True)
class Proposal:
    draft: Draft
    decision: Decision
    hits: tuple[MemoryHit, ...] = ()


class Drafter:
    def __init__(
        self,
        responder: Responder,
        *,
        recall: Recall | None = None,
        settings: DraftingSettings = DraftingSettings(),
    ) -> None:
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
    ) -> Proposal:
        settings = self._settings
        early = check_before_drafting(settings.policy, ai_replies_last_hour)
        if early is not None:  # no model call is spent on a conversation in a loop
            return Proposal(Draft(answer="", confidence=0.0, reasoning="no draft was made"), early)
        hits = self._recall_answers(pending)
        draft = self._responder.draft(
            DraftRequest(
                conversation_id=conversation_id,
                customer_name=customer_name,
                transcript=tuple(transcript),
                pending=tuple(pending),
                session_id=session_id,
                known_answers=hits,
            )
        )
        return Proposal(draft, decide(draft, [m.text for m in pending], settings.policy), hits)

    def _recall_answers(self, pending: Sequence[Message]) -> tuple[MemoryHit, ...]:
        """Verified answers for all pending messages: a burst is searched as one question."""
        if self._recall is None or self._settings.memory_top_k <= 0:
            return ()
        query = "\n".join(m.text for m in pending)[-MEMORY_QUERY_CHARS:]
        return tuple(
            self._recall.search(
                query,
                limit=self._settings.memory_top_k,
                min_score=self._settings.memory_min_score,
            )
        )
