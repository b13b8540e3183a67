"""Memory as help, not a dependency: deadlines, failure counts, lazy re-opening.

These pin the guard's own logic with a small in-process catalogue; the real backends
are exercised in test_memory.py and test_answers.py.
"""

from __future__ import annotations

import threading
import time

import pytest

from intercom_responder.adapters.memory import AnswerMemoryError, MemoryEntry, MemoryHit
from intercom_responder.adapters.recall import Recall
from intercom_responder.defaults import MEMORY_REOPEN_SECONDS


class ListCatalogue:
    """The smallest AnswerMemory: exact-word overlap as the score."""

    backend = "list"

    def __init__(self, *, fail: bool = False, block: threading.Event | None = None) -> None:
        self.pairs: list[tuple[str, str]] = []
        self.fail = fail
        self.block = block
        self.closed = False

    def search(self, question: str, *, limit: int, min_score: float) -> list[MemoryHit]:
        if self.block is not None:
            self.block.wait(5)
        if self.fail:
            raise AnswerMemoryError("list catalogue: search failed")
        words = set(question.lower().split())
        hits = []
        for i, (q, a) in enumerate(self.pairs):
            score = len(words & set(q.lower().split())) / max(len(words), 1)
            if score >= min_score:
                hits.append(MemoryHit(str(i), q, a, score, "manual", None))
        return sorted(hits, key=lambda h: -h.score)[:limit]

    def add(
        self,
        question: str,
        answer: str,
        *,
        source: str,
        conversation_id: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> bool:
        if (question, answer) in self.pairs:
            return False
        self.pairs.append((question, answer))
        return True

    def entries(self, *, limit: int = 1000) -> list[MemoryEntry]:
        return [
            MemoryEntry(str(i), q, a, "manual", None, "") for i, (q, a) in enumerate(self.pairs)
        ]

    def close(self) -> None:
        self.closed = True


def test_search_and_remember_go_through_to_the_backend() -> None:
    catalogue = ListCatalogue()
    opened: list[ListCatalogue] = []
    recall = Recall(lambda: opened.append(catalogue) or catalogue)
    assert recall.remember("reset password", "Settings", source="approved") is True
    assert recall.remember("reset password", "Settings", source="approved") is False
    [hit] = recall.search("how to reset password", limit=3, min_score=0.1)
    assert hit.answer == "Settings" and recall.failures == 0
    assert opened == [catalogue]  # opened on first use, once
    recall.close()
    assert catalogue.closed


def test_a_failing_backend_gives_no_hits_and_counts_the_failure() -> None:
    recall = Recall(lambda: ListCatalogue(fail=True))
    assert recall.search("anything", limit=3, min_score=0.0) == []
    assert recall.failures == 1


def test_a_stuck_backend_is_given_up_after_the_deadline() -> None:
    release = threading.Event()
    recall = Recall(lambda: ListCatalogue(block=release), timeout=0.3)
    started = time.monotonic()
    assert recall.search("anything", limit=3, min_score=0.0) == []
    assert time.monotonic() - started < 1.5
    assert recall.failures == 1
    release.set()
    recall.close()


def test_opening_is_retried_at_most_once_a_minute() -> None:
    now = [1000.0]
    attempts: list[float] = []
    catalogue = ListCatalogue()

    def opener() -> ListCatalogue:
        attempts.append(now[0])
        if len(attempts) == 1:
            raise AnswerMemoryError("local memory is in use by another process")
        return catalogue

    recall = Recall(opener, clock=lambda: now[0])
    assert recall.search("q", limit=1, min_score=0) == []
    now[0] += MEMORY_REOPEN_SECONDS / 2
    assert recall.search("q", limit=1, min_score=0) == []
    assert len(attempts) == 1  # not hammering a backend that just failed to open
    now[0] += MEMORY_REOPEN_SECONDS
    catalogue.pairs.append(("q", "a"))
    assert [h.answer for h in recall.search("q", limit=1, min_score=0)] == ["a"]
    assert len(attempts) == 2 and recall.failures == 2


@pytest.mark.parametrize("limit", [0, -1])
def test_no_limit_means_no_call(limit: int) -> None:
    recall = Recall(lambda: ListCatalogue(fail=True))
    assert recall.search("q", limit=limit, min_score=0) == [] and recall.failures == 0
