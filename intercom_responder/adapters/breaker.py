"""Circuit breakers: stop calling a dependency that keeps failing, try again later.

While a breaker is open, calls fail at once with `CircuitOpenError` instead of waiting
for timeouts; the pipeline then parks the conversation until the breaker's next try,
without counting it as a failed attempt, so no customer message is lost or dead-lettered
because Intercom, the model, Mem0 or Slack had a bad ten minutes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum

from ..defaults import BREAKER_FAILURES, BREAKER_RESET_SECONDS
from ..errors import Dependency, IntercomResponderError

log = logging.getLogger(__name__)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class CircuitOpenError(IntercomResponderError):
    """A dependency is switched off for a while; `retry_in` says for how many seconds."""

    def __init__(self, dependency: Dependency, retry_in: float) -> None:
        super().__init__(
            f"{dependency} is failing: its circuit breaker is open, next try in {retry_in:.0f} s"
        )
        self.dependency = dependency
        self.retry_in = retry_in


class CircuitBreaker:
    def __init__(
        self,
        dependency: Dependency | str,
        *,
        failure_threshold: int = BREAKER_FAILURES,
        reset_after: float = BREAKER_RESET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.dependency = Dependency(dependency)
        self.name = self.dependency.value
        self._threshold = failure_threshold
        self._reset_after = reset_after
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0

    @property
    def state(self) -> BreakerState:
        with self._lock:
            return self._current()

    def check(self) -> None:
        """Raise `CircuitOpenError` unless a call may go through now."""
        with self._lock:
            if self._current() == OPEN:
                retry_at = self._opened_at + self._reset_after
                raise CircuitOpenError(self.dependency, retry_at - self._clock())

    def allows(self) -> bool:
        try:
            self.check()
        except CircuitOpenError:
            return False
        return True

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._set(CLOSED)

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            state = self._current()
            if state == HALF_OPEN or (state == CLOSED and self._failures >= self._threshold):
                self._opened_at = self._clock()
                self._set(OPEN)

    def _current(self) -> BreakerState:
        if self._state == OPEN and self._clock() >= self._opened_at + self._reset_after:
            self._set(HALF_OPEN)  # let the next call find out whether it is back
        return self._state

    def _set(self, state: BreakerState) -> None:
        if state == self._state:
            return
        self._state = state
        level = logging.WARNING if state == OPEN else logging.INFO
        log.log(level, "circuit breaker %s: %s", self.name, state)
        if self._on_change is not None:
            self._on_change(self.name, state)
