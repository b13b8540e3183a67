"""Dead letters: messages the daemon gave up on, and putting them back in the queue.

`python main.py dlq retry` changes the state file directly when no daemon runs. A
running daemon holds the state file's lock, so the command leaves a request file
beside it (`<state>.dlq-retry.json`) instead, which the daemon takes at the end of its
next poll (`apply_retry_requests`, one of the poller's maintenance tasks).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from ..adapters.files import StateFileError, read_json, write_atomically
from ..adapters.store import Store

log = logging.getLogger(__name__)


def retry_request_path(state_file: Path) -> Path:
    """Where `dlq retry` leaves its request for a running daemon (which holds the lock)."""
    state_file = Path(state_file)
    return state_file.with_name(f"{state_file.stem}.dlq-retry.json")


def request_retry(state_file: Path, conversation_id: str | None) -> None:
    """Leave a retry request (all dead letters, or one more id) for the running daemon."""
    path = retry_request_path(state_file)
    existing = read_json(path, "dead-letter retry request")
    wanted: list[str] | None
    if conversation_id is None:
        wanted = None
    elif isinstance(existing, dict) and existing.get("ids") is None:
        wanted = None  # "all" is already asked for
    else:
        ids = existing.get("ids") if isinstance(existing, dict) else []
        wanted = [*(str(i) for i in ids or []), conversation_id]
    write_atomically(path, {"ids": wanted})


def take_retry_request(state_file: Path) -> tuple[bool, list[str] | None]:
    """(found, ids): ids None means all dead letters. The request file is removed."""
    path = retry_request_path(state_file)
    try:
        document = read_json(path, "dead-letter retry request")
    except StateFileError:
        document = {"ids": None}  # unreadable: the intent was clearly "retry"
    if document is None:
        return False, None
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    ids = document.get("ids") if isinstance(document, dict) else None
    return True, [str(i) for i in ids] if isinstance(ids, list) else None


def apply_retry_requests(store: Store, state_file: Path) -> None:
    """Carry out a request left by `dlq retry` while this daemon held the state file."""
    found, ids = take_retry_request(state_file)
    if not found:
        return
    retried = store.retry_dead_letters() if ids is None else []
    for conversation_id in ids or []:
        retried += store.retry_dead_letters(conversation_id)
    log.info("dead letters back in the queue: %s", ", ".join(retried) or "none matched")
