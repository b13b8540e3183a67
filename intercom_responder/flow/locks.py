"""One conversation at a time: the pipeline, a Slack click and a review expiry take turns.

Within one daemon a lock per conversation; across replicas on one database also a
claim in it (`Claims`, STATE_BACKEND=postgres), held for as long as the work and given
up when it is done or when its replica dies (the claim's lease runs out).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from ..defaults import CLAIM_RETRY_SECONDS
from ..errors import Dependency, IntercomResponderError


class ClaimedElsewhereError(IntercomResponderError):
    """Another replica is working on this conversation right now."""

    dependency = Dependency.STATE


class Claims(Protocol):
    def claim(self, conversation_id: str) -> bool: ...
    def release(self, conversation_id: str) -> None: ...


@dataclass
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    holders: int = 0  # holding or waiting


class ConversationLocks:
    """A lock per conversation id, kept only while someone holds or waits for it.

    A daemon that runs for months sees many thousands of conversations; a lock per id
    kept forever would grow without bound.
    """

    def __init__(
        self,
        claims: Claims | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._guard = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._claims = claims
        self._sleep = sleep

    @contextmanager
    def hold(self, conversation_id: str, *, wait: float = 0.0) -> Iterator[None]:
        """Raises `ClaimedElsewhereError` when another replica holds it for longer than `wait`."""
        with self._guard:
            entry = self._entries.setdefault(conversation_id, _Entry())
            entry.holders += 1
        try:
            with entry.lock:
                self._claim(conversation_id, wait)
                try:
                    yield
                finally:
                    if self._claims is not None:
                        self._claims.release(conversation_id)
        finally:
            with self._guard:
                entry.holders -= 1
                if entry.holders == 0:
                    del self._entries[conversation_id]

    def _claim(self, conversation_id: str, wait: float) -> None:
        if self._claims is None:
            return
        deadline = time.monotonic() + wait
        while not self._claims.claim(conversation_id):
            if time.monotonic() >= deadline:
                raise ClaimedElsewhereError(
                    f"conversation {conversation_id}: another replica is working on it"
                )
            self._sleep(CLAIM_RETRY_SECONDS)

    def __len__(self) -> int:
        with self._guard:
            return len(self._entries)
