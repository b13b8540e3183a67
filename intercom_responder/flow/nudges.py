"""Webhook notifications become looks at a conversation: now, once, and not too often.

A notification only says "look at conversation X"; the pipeline reads it from the API
and does everything else exactly as for a polled conversation, under the same lock. So
the same notification twice, a burst for one conversation, notifications out of order or
one arriving while a poll handles the conversation still give one answer per message.

What this adds is timing:
- a conversation is queued at most once; a notification while it is being handled makes
  it be looked at once more afterwards (the read may have been too early);
- a customer message is first looked at when its debounce is over (from the
  notification's time), and then no more than once per DEBOUNCE_SECONDS, so a flood of
  notifications costs one read per debounce window;
- a conversation the pipeline parks (a debounce) is looked at again when it is due,
  without waiting for the next poll.
Polling goes on beside this, so a notification that never comes is not a lost message.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..core.records import State
from ..core.webhook import Notification, Nudge
from .outcome import Status
from .pipeline import Pipeline

if TYPE_CHECKING:
    from ..adapters.store import Store

log = logging.getLogger(__name__)

#: A notification time further ahead of our clock than this is not trusted.
MAX_CLOCK_AHEAD_SECONDS = 60.0


class Nudges:
    def __init__(
        self,
        *,
        pipeline: Pipeline,
        store: Store,
        debounce_seconds: float,
        concurrency: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pipeline = pipeline
        self._store = store
        self._debounce = debounce_seconds
        self._clock = clock
        self._workers = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="nudge")
        self._wake = threading.Condition()
        self._heap: list[tuple[float, str]] = []
        self._due: dict[str, float] = {}  # conversation -> when it is next looked at
        self._running: set[str] = set()
        self._again: set[str] = set()  # notified while being handled
        self._last_look: dict[str, float] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None

    # --- from the webhook receiver (must never block) ------------------------------------

    def notify(self, notification: Notification) -> None:
        conversation_id = notification.conversation_id
        if conversation_id is None:
            return
        if notification.nudge is Nudge.TEAMMATE_REPLIED:
            record = self._store.get(conversation_id)
            if record is None or record.state is not State.IN_REVIEW:
                return  # only a pending review can be overtaken by a teammate's reply
            self.look_at(conversation_id)
        elif notification.nudge is Nudge.CUSTOMER_WROTE:
            self.look_at(conversation_id, written_at=notification.created_at)

    def look_at(self, conversation_id: str, *, written_at: float | None = None) -> None:
        now = self._clock()
        with self._wake:
            if conversation_id in self._running:
                self._again.add(conversation_id)
                return
            last = self._last_look.get(conversation_id)
            at = now if last is None else max(now, last + self._debounce)
            if written_at is not None and written_at <= now + MAX_CLOCK_AHEAD_SECONDS:
                at = max(at, min(written_at + self._debounce, now + self._debounce))
            self._schedule(conversation_id, at)

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._dispatch, name="nudges", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(5.0)
        self._workers.shutdown(wait=True, cancel_futures=True)

    def pending(self) -> int:
        """Conversations queued or being handled."""
        with self._wake:
            return len(self._due) + len(self._running)

    # --- the dispatcher ------------------------------------------------------------------

    def _schedule(self, conversation_id: str, at: float) -> None:
        """Caller holds `_wake`. An earlier time already queued wins."""
        queued = self._due.get(conversation_id)
        if queued is not None and queued <= at:
            return
        self._due[conversation_id] = at
        heapq.heappush(self._heap, (at, conversation_id))
        self._wake.notify()

    def _dispatch(self) -> None:
        with self._wake:
            while not self._stopping:
                now = self._clock()
                while self._heap and self._heap[0][0] <= now:
                    at, conversation_id = heapq.heappop(self._heap)
                    if self._due.get(conversation_id) != at:
                        continue  # replaced by an earlier time
                    del self._due[conversation_id]
                    self._running.add(conversation_id)
                    self._last_look[conversation_id] = now
                    self._workers.submit(self._handle, conversation_id)
                self._forget_old_looks(now)
                timeout = self._heap[0][0] - now if self._heap else None
                self._wake.wait(timeout=min(timeout, 1.0) if timeout is not None else 1.0)

    def _handle(self, conversation_id: str) -> None:
        try:
            outcome = self._pipeline.handle(conversation_id)
        except Exception:  # the pipeline records failures; this is the store failing
            log.exception("conversation %s: a webhook look failed", conversation_id)
            outcome = None
        due_at = None
        if outcome is not None and outcome.status is Status.WAITING:
            record = self._store.get(conversation_id)
            due_at = record.due_at if record is not None else None
        with self._wake:
            self._running.discard(conversation_id)
            if self._stopping:
                return
            if due_at is not None:
                self._schedule(conversation_id, due_at)
            if conversation_id in self._again:
                self._again.discard(conversation_id)
                last = self._last_look.get(conversation_id, 0.0)
                self._schedule(conversation_id, max(self._clock(), last + self._debounce))

    def _forget_old_looks(self, now: float) -> None:
        """Caller holds `_wake`: a look older than the debounce no longer limits anything."""
        if len(self._last_look) < 1000:
            return
        cutoff = now - self._debounce
        for conversation_id in [c for c, t in self._last_look.items() if t < cutoff]:
            del self._last_look[conversation_id]
