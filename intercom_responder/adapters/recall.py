"""The answer memory as help, never as a dependency.

A Mem0 outage, a slow embedding server or a local store held by another process must
not stop a single reply: every call here has a deadline, every failure is logged and
counted, and the caller simply drafts without verified answers. The backend is opened
on first use and, after a failure to open, tried again at most once a minute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, TypeVar

from ..defaults import MEMORY_REOPEN_SECONDS, MEMORY_TIMEOUT
from .breaker import CircuitBreaker

if TYPE_CHECKING:
    from .memory import AnswerMemory, KnowledgeHit, MemoryEntry, MemoryHit

log = logging.getLogger(__name__)

T = TypeVar("T")


class Recall:
    def __init__(
        self,
        opener: Callable[[], AnswerMemory],
        *,
        timeout: float = MEMORY_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        breaker: CircuitBreaker | None = None,
        on_failure: Callable[[], None] | None = None,
    ) -> None:
        self._breaker = breaker
        self._on_failure = on_failure
        self._opener = opener
        self._timeout = timeout
        self._clock = clock
        self._memory: AnswerMemory | None = None
        self._open_failed_at: float | None = None
        # One worker: the local backend is not thread-safe, and a stuck call must not
        # pile up threads. Callers wait at most `timeout` for their turn and answer.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memory")
        self.failures = 0

    def search(self, question: str, *, limit: int, min_score: float) -> list[MemoryHit]:
        """Verified answers for `question`; empty (with a warning) when memory fails."""
        if limit <= 0 or not question.strip():
            return []
        result = self._call(
            "search", lambda memory: memory.search(question, limit=limit, min_score=min_score)
        )
        return result if result is not None else []

    def lookup(
        self,
        question: str,
        *,
        answers: tuple[int, float],
        pieces: tuple[int, float],
    ) -> tuple[list[MemoryHit], list[KnowledgeHit]]:
        """Verified answers and documentation for a draft in one call and one deadline:
        (limit, min_score) for each kind; a kind with limit 0 is not searched."""
        if not question.strip() or (answers[0] <= 0 and pieces[0] <= 0):
            return [], []

        def both(memory: AnswerMemory) -> tuple[list[MemoryHit], list[KnowledgeHit]]:
            found = (
                memory.search(question, limit=answers[0], min_score=answers[1])
                if answers[0] > 0
                else []
            )
            documentation = (
                memory.search_pieces(question, limit=pieces[0], min_score=pieces[1])
                if pieces[0] > 0
                else []
            )
            return found, documentation

        result = self._call("search", both)
        return result if result is not None else ([], [])

    def run(self, operation: Callable[[AnswerMemory], T]) -> T:
        """One call of a long job (the daemon's article import) on the memory's worker,
        between the drafts' searches; unlike the searches, a failure raises."""
        future: Future[T] = self._worker.submit(self._run, operation)
        return future.result(timeout=self._timeout)

    def remember(
        self,
        question: str,
        answer: str,
        *,
        source: str,
        conversation_id: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> bool | None:
        """Add a verified pair: True added, False already known, None memory failed."""
        return self._call(
            "add",
            lambda memory: memory.add(
                question, answer, source=source, conversation_id=conversation_id, extra=extra
            ),
        )

    def entries(self, *, limit: int = 1000) -> list[MemoryEntry] | None:
        return self._call("list", lambda memory: memory.entries(limit=limit))

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
        if self._memory is not None:
            try:
                self._memory.close()
            except Exception as exc:  # closing must never fail a shutdown
                log.warning("closing the answer memory failed: %s", exc)
            self._memory = None

    def _call(self, what: str, operation: Callable[[AnswerMemory], T]) -> T | None:
        if self._breaker is not None and not self._breaker.allows():
            log.debug("answer memory %s skipped: its circuit breaker is open", what)
            return None
        future: Future[T] = self._worker.submit(self._run, operation)
        try:
            result = future.result(timeout=self._timeout)
            if self._breaker is not None:
                self._breaker.success()
            return result
        except FutureTimeout:
            self._failed(what, f"no answer within {self._timeout:g} s (MEMORY_TIMEOUT)")
        except Exception as exc:
            self._failed(what, str(exc))
        return None

    def _run(self, operation: Callable[[AnswerMemory], T]) -> T:
        return operation(self._open())

    def _open(self) -> AnswerMemory:
        """Runs only in the single worker thread, so it needs no lock of its own."""
        if self._memory is not None:
            return self._memory
        now = self._clock()
        if self._open_failed_at is not None and now - self._open_failed_at < MEMORY_REOPEN_SECONDS:
            raise RuntimeError("the answer memory could not be opened recently")
        try:
            self._memory = self._opener()
        except Exception:
            self._open_failed_at = now
            raise
        self._open_failed_at = None
        log.info("answer memory open (%s)", self._memory.backend)
        return self._memory

    def _failed(self, what: str, reason: str) -> None:
        self.failures += 1
        if self._breaker is not None:
            self._breaker.failure()
        if self._on_failure is not None:
            self._on_failure()
        log.warning("answer memory %s failed, going on without it: %s", what, reason)
