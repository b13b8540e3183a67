"""Per-conversation locks: one at a time, and none kept once nobody holds them."""

from __future__ import annotations

import threading
import time

from intercom_responder.flow.locks import ConversationLocks


def test_the_same_conversation_is_handled_one_at_a_time() -> None:
    locks = ConversationLocks()
    inside: list[str] = []
    overlaps: list[int] = []

    def work(name: str) -> None:
        with locks.hold("42"):
            inside.append(name)
            overlaps.append(len(inside))
            time.sleep(0.02)
            inside.remove(name)

    threads = [threading.Thread(target=work, args=(f"t{i}",)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == [1] * 5


def test_other_conversations_do_not_wait() -> None:
    locks = ConversationLocks()
    done = threading.Event()

    def other() -> None:
        with locks.hold("2"):
            done.set()

    with locks.hold("1"):
        thread = threading.Thread(target=other)
        thread.start()
        assert done.wait(1.0)
    thread.join()


def test_locks_are_dropped_when_free_so_they_do_not_grow_without_bound() -> None:
    locks = ConversationLocks()
    for conversation_id in range(10_000):
        with locks.hold(str(conversation_id)):
            pass
    assert len(locks) == 0
    with locks.hold("7"):
        assert len(locks) == 1
    assert len(locks) == 0


def test_a_failure_inside_releases_the_lock() -> None:
    locks = ConversationLocks()
    try:
        with locks.hold("9"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert len(locks) == 0
    with locks.hold("9"):  # not left locked
        pass
