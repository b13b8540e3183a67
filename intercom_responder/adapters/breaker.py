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

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitOpenError(Exception):
    """A dependency is switched off for a while; `retry_at` says until when (monotonic)."""

    def __init__(self, name: str, retry_in: float, retry_at: float) -> None:
        super().__init__(
            f"{name} is failing: its circuit breaker is open, next try in {retry_in:.0f} s"
        )
        self.name = name
        self.retry_in = retry_in
        self.retry_at = retry_at


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        reset_after: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.name = name
        self._threshold = failure_threshold
        self._reset_after = reset_after
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0

    @property
    def state(self) -> str:
        with self._lock:
            return self._current()

    def check(self) -> None:
        """Raise `CircuitOpenError` unless a call may go through now."""
        with self._lock:
            if self._current() == OPEN:
                retry_at = self._opened_at + self._reset_after
                raise CircuitOpenError(self.name, retry_at - self._clock(), retry_at)

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

    def seconds_until_retry(self) -> float:
        with self._lock:
            if self._current() != OPEN:
                return 0.0
            return max(self._opened_at + self._reset_after - self._clock(), 0.0)

    def _current(self) -> str:
        if self._state == OPEN and self._clock() >= self._opened_at + self._reset_after:
            self._set(HALF_OPEN)  # let the next call find out whether it is back
        return self._state

    def _set(self, state: str) -> None:
        if state == self._state:
            return
        self._state = state
        level = logging.WARNING if state == OPEN else logging.INFO
        log.log(level, "circuit breaker %s: %s", self.name, state)
        if self._on_change is not None:
            self._on_change(self.name, state)
