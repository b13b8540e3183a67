"""Which team should have a conversation: one call to the OpenAI-compatible model.

The reply is read strictly (`core.routing.read_route`); a model that cannot be asked is
a fallback with its cause, never an error that would hold up a hand-off.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core.routing import (
    ROUTING_SCHEMA,
    ROUTING_SYSTEM_PROMPT,
    Fallback,
    Route,
    Team,
    build_routing_prompt,
    read_route,
)
from ..core.text import one_line
from .responder import ChatModel, ResponderError


class TeamClassifier:
    def __init__(self, chat: ChatModel, *, min_confidence: float) -> None:
        self._chat = chat
        self._min_confidence = min_confidence

    def classify(
        self, teams: Sequence[Team], customer_texts: Sequence[str], *, about: str
    ) -> Route:
        if not teams:
            return Route(None, 0.0, "the workspace has no teams", Fallback.NO_TEAMS)
        try:
            content, problem, _ = self._chat.reply(
                ROUTING_SYSTEM_PROMPT,
                build_routing_prompt(teams, customer_texts),
                "route_conversation",
                ROUTING_SCHEMA,
                about=f"{about} (routing)",
            )
        except ResponderError as exc:
            return Route(None, 0.0, f"routing failed: {one_line(exc, 200)}", Fallback.MODEL_FAILED)
        if problem is not None:
            return Route(None, 0.0, f"routing failed: {problem}", Fallback.MODEL_FAILED)
        return read_route(content, teams, min_confidence=self._min_confidence)
