"""The model behind its circuit breaker, with its latency measured.

As `Recall` guards the answer memory, this guards the model: while the model keeps
failing, calls fail at once with `CircuitOpenError` instead of waiting for timeouts,
and the pipeline parks the conversation without counting an attempt.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.draft import Draft
from .breaker import CircuitBreaker
from .responder import DraftRequest, Responder, ResponderError


class GuardedResponder:
    def __init__(
        self,
        responder: Responder,
        *,
        breaker: CircuitBreaker | None = None,
        on_latency: Callable[[float], None] | None = None,
    ) -> None:
        self._responder = responder
        self._breaker = breaker
        self._on_latency = on_latency

    def draft(self, request: DraftRequest) -> Draft:
        if self._breaker is not None:
            self._breaker.check()  # CircuitOpenError: the model is failing, try later
        try:
            draft = self._responder.draft(request)
        except ResponderError:
            if self._breaker is not None:
                self._breaker.failure()
            raise
        if self._breaker is not None:
            self._breaker.success()
        if self._on_latency is not None and draft.latency_seconds > 0:
            self._on_latency(draft.latency_seconds)
        return draft
