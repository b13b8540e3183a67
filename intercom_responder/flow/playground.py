"""The playground: the daemon's answer pipeline on a chat page, with no Intercom.

Each session is a conversation kept in memory. A customer message goes through the very
`Drafter` the daemon and `ask` use (memory, draft, decision), with the same policy and
reply cap; what the daemon would send is sent (Automatic), or every draft waits for
Approve, Edit or Reject as in Slack (Manual). A hand-off is shown and, as in the daemon,
the AI stays out of that session afterwards. Nothing is sent anywhere but to the model;
the answer memory is only read unless `learn` is on.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.conversation import Message
from ..core.playground import (
    Mode,
    PlaygroundInputError,
    UnknownSessionError,
    Verdict,
    message_text,
    mode,
    verdict,
)
from ..core.policy import Action
from ..defaults import AI_REPLY_WINDOW_SECONDS, TRANSCRIPT_MESSAGES
from .drafting import Drafter, Proposal

if TYPE_CHECKING:
    from ..adapters.recall import Recall

HANDED_OFF = "handed to the team; waiting for a teammate (start a new session to try again)"


@dataclass
class _Session:
    id: str
    messages: list[Message] = field(default_factory=list)  # what the customer saw
    pending: dict[str, Any] | None = None  # the draft waiting for a decision
    answered_at: list[float] = field(default_factory=list)  # for MAX_AI_REPLIES_PER_HOUR
    handed_off: str | None = None  # why, once a person has the conversation
    lock: threading.Lock = field(default_factory=threading.Lock)

    def unanswered(self) -> list[Message]:
        """The customer's messages after the last answer: one draft covers them all."""
        pending: list[Message] = []
        for message in self.messages:
            pending = [] if message.is_our_side else [*pending, message]
        return pending


class Playground:
    def __init__(
        self,
        drafter: Drafter,
        *,
        recall: Recall | None = None,
        learn: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._drafter = drafter
        self._recall = recall
        self._learn = learn
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._guard = threading.Lock()
        self._ids = itertools.count(1)
        self._parts = itertools.count(1)

    # --- the API -----------------------------------------------------------------------

    def new_session(self) -> dict[str, Any]:
        with self._guard:
            session = _Session(id=f"s{next(self._ids)}")
            self._sessions[session.id] = session
        return {"id": session.id}

    def message(self, session_id: str, body: Any) -> dict[str, Any]:
        """Draft for everything the customer wrote since the last answer; `ResponderError`."""
        fields = _object(body)
        text, chosen = message_text(fields.get("text")), mode(fields.get("mode"))
        session = self._session(session_id)
        with session.lock:
            session.messages.append(self._message(text, customer=True))
            session.pending = None  # a newer message replaces a waiting draft
            if session.handed_off is not None:
                return _handoff_view(HANDED_OFF)
            proposal = self._drafter.propose(
                conversation_id=f"playground-{session.id}",
                customer_name="",
                transcript=session.messages[-TRANSCRIPT_MESSAGES:],
                pending=session.unanswered(),
                ai_replies_last_hour=len(self._recent(session)),
            )
            view = _view(proposal)
            action = proposal.decision.action
            if action is Action.HANDOFF:
                session.handed_off = proposal.decision.reason
            elif action is Action.REPLY and chosen is Mode.AUTO:
                self._send(session, proposal.draft.answer)
                view["sent"] = True
            else:
                view["pending"] = True
                session.pending = view
            return view

    def review(self, session_id: str, body: Any) -> dict[str, Any]:
        fields = _object(body)
        chosen = verdict(fields.get("action"))
        session = self._session(session_id)
        with session.lock:
            waiting = session.pending
            if waiting is None:
                raise PlaygroundInputError("no draft is waiting for a decision")
            if chosen is Verdict.REJECT:
                session.pending = None
                session.handed_off = "the draft was rejected"
                return {"action": chosen.value, "sent": False, "text": None}
            text = message_text(fields.get("text")) if chosen is Verdict.EDIT else waiting["draft"]
            question = "\n".join(m.text for m in session.unanswered())
            session.pending = None
            self._send(session, text)
        if self._learn and self._recall is not None:
            self._recall.remember(question, text, source="playground", conversation_id=session.id)
        return {"action": chosen.value, "sent": True, "text": text}

    def session(self, session_id: str) -> dict[str, Any]:
        session = self._session(session_id)
        with session.lock:
            return {
                "id": session.id,
                "messages": [
                    {"role": "customer" if m.is_customer else "answer", "text": m.text}
                    for m in session.messages
                ],
                "pending": session.pending,
                "handed_off": session.handed_off,
            }

    def close(self) -> None:
        """The sessions vanish; the memory is let go (embedded Qdrant: one process)."""
        if self._recall is not None:
            self._recall.close()

    # --- helpers -----------------------------------------------------------------------

    def _session(self, session_id: str) -> _Session:
        with self._guard:
            session = self._sessions.get(session_id)
        if session is None:
            raise UnknownSessionError(f"no playground session {session_id!r}")
        return session

    def _send(self, session: _Session, text: str) -> None:
        session.messages.append(self._message(text, customer=False))
        session.answered_at.append(self._clock())

    def _recent(self, session: _Session) -> list[float]:
        now = self._clock()
        return [t for t in session.answered_at if now - t < AI_REPLY_WINDOW_SECONDS]

    def _message(self, text: str, *, customer: bool) -> Message:
        return Message(
            part_id=f"p{next(self._parts)}",
            kind="comment",
            author_type="user" if customer else "admin",
            author_id="customer" if customer else "playground",
            author_name="",
            body_html="",
            text=text,
            created_at=int(self._clock()),
        )


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise PlaygroundInputError("the body must be a JSON object")
    return body


def _view(proposal: Proposal) -> dict[str, Any]:
    draft, decision = proposal.draft, proposal.decision
    return {
        "draft": draft.answer,
        "confidence": draft.confidence,
        "reasoning": draft.reasoning,
        "error": draft.error,
        "decision": decision.action.value,
        "reason": decision.reason,
        "rule": decision.rule,
        "memory_hits": [
            {"question": h.question, "answer": h.answer, "score": h.score, "source": h.source}
            for h in proposal.hits
        ],
        "sent": False,
        "pending": False,
    }


def _handoff_view(reason: str) -> dict[str, Any]:
    return {
        "draft": "",
        "confidence": 0.0,
        "reasoning": "",
        "error": None,
        "decision": Action.HANDOFF.value,
        "reason": reason,
        "rule": "handed_off",
        "memory_hits": [],
        "sent": False,
        "pending": False,
    }
