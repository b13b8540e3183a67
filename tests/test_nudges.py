"""When webhook notifications make the daemon look: once, when due, not too often.

The pipeline here is a stand-in that records when it was asked to handle a conversation:
this is the scheduling logic alone. The integration through HTTP and the real pipeline is
in tests/test_webhook.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from intercom_responder.adapters.store import StateStore
from intercom_responder.core.records import ConversationRecord, State
from intercom_responder.core.webhook import Notification, Nudge
from intercom_responder.flow.nudges import Nudges
from intercom_responder.flow.outcome import Outcome, Status


class RecordingPipeline:
    def __init__(self, store: StateStore, *, seconds: float = 0.0) -> None:
        self.store = store
        self.seconds = seconds
        self.calls: list[tuple[str, float]] = []
        self.lock = threading.Lock()
        self.park_until: dict[str, float] = {}

    def handle(self, conversation_id: str) -> Outcome:
        with self.lock:
            self.calls.append((conversation_id, time.time()))
        time.sleep(self.seconds)
        until = self.park_until.pop(conversation_id, None)
        if until is not None:
            self.store.put(ConversationRecord(conversation_id, State.WAITING, due_at=until))
            return Outcome(conversation_id, Status.WAITING, "debounce")
        return Outcome(conversation_id, Status.REPLIED, "ok")

    def count(self, conversation_id: str) -> int:
        with self.lock:
            return sum(1 for cid, _ in self.calls if cid == conversation_id)


def wrote(conversation_id: str, at: float | None = None) -> Notification:
    return Notification(
        topic="conversation.user.replied",
        nudge=Nudge.CUSTOMER_WROTE,
        conversation_id=conversation_id,
        created_at=int(at) if at is not None else None,
    )


def eventually(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "sessions.json") as opened:
        yield opened


def nudges_for(pipeline: RecordingPipeline, store: StateStore, debounce: float) -> Nudges:
    nudges = Nudges(
        pipeline=pipeline,  # type: ignore[arg-type]
        store=store,
        debounce_seconds=debounce,
        concurrency=4,
    )
    nudges.start()
    return nudges


def test_a_notification_is_handled_at_once_without_a_debounce(store: StateStore) -> None:
    pipeline = RecordingPipeline(store)
    nudges = nudges_for(pipeline, store, debounce=0)
    try:
        sent = time.time()
        nudges.notify(wrote("1", sent))
        eventually(lambda: pipeline.count("1") == 1)
        assert pipeline.calls[0][1] - sent < 0.5
    finally:
        nudges.stop()


def test_a_flood_costs_one_look_per_debounce_window(store: StateStore) -> None:
    pipeline = RecordingPipeline(store)
    nudges = nudges_for(pipeline, store, debounce=0.5)
    try:
        written = int(time.time())  # Intercom's created_at: whole seconds
        for _ in range(50):
            nudges.notify(wrote("7", written))
        eventually(lambda: pipeline.count("7") == 1)
        first = pipeline.calls[0][1]
        assert first >= written + 0.5  # the message's debounce first
        time.sleep(0.3)
        assert pipeline.count("7") == 1 and nudges.pending() == 0
        for _ in range(50):  # more inside the next window: one more look, at its end
            nudges.notify(wrote("7"))
        eventually(lambda: pipeline.count("7") == 2)
        assert pipeline.calls[1][1] - first >= 0.45
    finally:
        nudges.stop()


def test_a_notification_during_handling_gives_one_more_look_afterwards(
    store: StateStore,
) -> None:
    pipeline = RecordingPipeline(store, seconds=0.3)
    nudges = nudges_for(pipeline, store, debounce=0)
    try:
        nudges.notify(wrote("3"))
        eventually(lambda: pipeline.count("3") == 1)
        for _ in range(5):
            nudges.notify(wrote("3"))  # while the first look runs
        eventually(lambda: pipeline.count("3") == 2)
        time.sleep(0.5)
        assert pipeline.count("3") == 2
    finally:
        nudges.stop()


def test_a_parked_conversation_is_looked_at_again_when_due(store: StateStore) -> None:
    pipeline = RecordingPipeline(store)
    pipeline.park_until["5"] = time.time() + 0.4
    nudges = nudges_for(pipeline, store, debounce=0)
    try:
        nudges.notify(wrote("5"))
        eventually(lambda: pipeline.count("5") == 2)
        assert pipeline.calls[1][1] - pipeline.calls[0][1] >= 0.35
    finally:
        nudges.stop()


def test_a_teammate_reply_is_looked_at_only_for_a_pending_review(store: StateStore) -> None:
    pipeline = RecordingPipeline(store)
    nudges = nudges_for(pipeline, store, debounce=0)
    replied = Notification("conversation.admin.replied", Nudge.TEAMMATE_REPLIED, "9")
    try:
        nudges.notify(replied)
        time.sleep(0.2)
        assert pipeline.count("9") == 0  # not in review: nothing to make stale
        store.put(ConversationRecord("9", State.IN_REVIEW))
        nudges.notify(replied)
        eventually(lambda: pipeline.count("9") == 1)
        nudges.notify(Notification("ping", Nudge.PING))
        nudges.notify(Notification("contact.created", Nudge.NOTHING, "9"))
        time.sleep(0.2)
        assert pipeline.count("9") == 1
    finally:
        nudges.stop()


def test_stop_ends_the_workers_and_drops_what_is_queued(store: StateStore) -> None:
    pipeline = RecordingPipeline(store)
    nudges = nudges_for(pipeline, store, debounce=5)
    nudges.notify(wrote("8", time.time()))
    nudges.stop()
    time.sleep(0.2)
    assert pipeline.count("8") == 0  # picked up by polling after the next start
