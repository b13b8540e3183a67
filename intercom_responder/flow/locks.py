"""One conversation at a time: the pipeline, a Slack click and a review expiry take turns."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    holders: int = 0  # holding or waiting


class ConversationLocks:
    """A lock per conversation id, kept only while someone holds or waits for it.

    A daemon that runs for months sees many thousands of conversations; a lock per id
    kept forever would grow without bound.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    @contextmanager
    def hold(self, conversation_id: str) -> Iterator[None]:
        with self._guard:
            entry = self._entries.setdefault(conversation_id, _Entry())
            entry.holders += 1
        try:
            with entry.lock:
                yield
        finally:
            with self._guard:
                entry.holders -= 1
                if entry.holders == 0:
                    del self._entries[conversation_id]

    def __len__(self) -> int:
        with self._guard:
            return len(self._entries)
