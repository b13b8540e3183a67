"""The state file: what was done for each conversation, and where the search stopped.

Exactly-once rests on two things here. Before a reply or note is sent, the intent is
written (state `SENDING`, with the customer part it answers); after Intercom accepts
it, the result is written. A crash between the two leaves `SENDING` behind, and the
pipeline then looks in the conversation for its own part instead of sending again.
Every write replaces the whole file atomically (temp file, fsync, rename), so a crash
never leaves half a file; a file that cannot be read stops the start and is never
overwritten.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TextIO

FORMAT_VERSION = 1

# Conversation states. A conversation is "in flight" while it is READY_FOR_RESPONSE or
# SENDING; WAITING comes back at `due_at`; the rest are finished until Intercom shows
# a newer customer message.
WAITING = "WAITING"  # debounce, or a retry after a failure
READY_FOR_RESPONSE = "READY_FOR_RESPONSE"  # customer messages found, draft under way
SENDING = "SENDING"  # reply or note about to be posted: look before sending again
AWAITING_USER_REPLY = "AWAITING_USER_REPLY"  # our reply is out
HANDED_OFF = "HANDED_OFF"  # an internal note put it in front of the team
IN_REVIEW = "IN_REVIEW"  # a draft waits for a person in Slack (see `review`)
SKIPPED = "SKIPPED"  # looked at, nothing to do (teammate answered, too old, ...)
FAILED = "FAILED"  # gave up after MAX_ATTEMPTS; the team got a note

STATES = (
    WAITING,
    READY_FOR_RESPONSE,
    SENDING,
    IN_REVIEW,
    AWAITING_USER_REPLY,
    HANDED_OFF,
    SKIPPED,
    FAILED,
)
# FAILED (a dead letter) is kept until `dlq retry` or a newer customer message.
FINISHED_STATES = frozenset({AWAITING_USER_REPLY, HANDED_OFF, SKIPPED})
#: States in which a customer message waits on the daemon itself (not on a person).
WAITING_ON_DAEMON = frozenset({WAITING, READY_FOR_RESPONSE, SENDING})
IN_FLIGHT_STATES = frozenset({READY_FOR_RESPONSE, SENDING})


class StateFileError(Exception):
    """The state file cannot be used; the message names the file and what to do."""


class StateLockedError(StateFileError):
    """Another daemon holds the state file."""


@dataclass
class ConversationRecord:
    conversation_id: str
    state: str
    customer_part_id: str | None = None  # newest customer part handled or in flight
    action: str | None = None  # "reply" or "note": what SENDING is about to post
    reply_part_id: str | None = None  # the part we posted
    seen_updated_at: int | None = None  # Intercom's updated_at when we last read it
    seen_at: float | None = None  # local time of that read (same-second changes, see triage)
    due_at: float | None = None  # WAITING: when to look again
    attempts: int = 0
    last_error: str | None = None
    reason: str | None = None
    session_id: str | None = None
    session_expires_at: float | None = None
    ai_replies: list[float] | None = None  # when our AI replies went out (last hour only)
    memory_ids: list[str] | None = None  # catalogue entries given to the model for this draft
    review: dict[str, Any] | None = None  # IN_REVIEW: the Slack message and all to act on it
    customer_message_at: int | None = None  # when the newest customer message was written
    retry_requested: bool | None = None  # `dlq retry`: try again although it was handed off
    created_at: float = 0.0
    updated_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        # Not asdict(): it deep-copies, and compacting 10,000 records must stay cheap.
        values = ((name, getattr(self, name)) for name in _RECORD_FIELDS)
        return {name: value for name, value in values if value is not None}

    @classmethod
    def from_json(cls, conversation_id: str, data: Any) -> ConversationRecord:
        if not isinstance(data, dict):
            raise ValueError(f"conversation {conversation_id}: entry is not an object")
        known = {f.name for f in fields(cls)} - {"conversation_id"}
        values = {key: value for key, value in data.items() if key in known}
        record = cls(conversation_id=conversation_id, **values)
        if record.state not in STATES:
            raise ValueError(f"conversation {conversation_id}: unknown state {record.state!r}")
        return record


_RECORD_FIELDS = tuple(f.name for f in fields(ConversationRecord) if f.name != "conversation_id")

#: The journal is folded into the snapshot once it has this many lines, or as many
#: lines as there are conversations, whichever is more (and at every start and close).
COMPACT_MIN_LINES = 1000


@dataclass
class _Data:
    cursor: int | None = None
    conversations: dict[str, ConversationRecord] = field(default_factory=dict)


class StateStore:
    """Thread-safe; every change is on disk before the method returns.

    The state is the JSON snapshot (`STATE_FILE`, the documented format) plus a journal
    beside it (`<STATE_FILE>.journal`, one JSON change per line, fsynced on every
    change). Appending one line costs the same with 10 or 100,000 conversations, where
    rewriting the whole file did not; the journal is folded into the snapshot (written
    atomically) at start, at close, and whenever it grows as long as the state itself.
    A torn last line (a crash in the middle of a write) is a change that was never
    acknowledged, and is dropped; any other unreadable line stops the start.

    `read_only=True` (dry run) loads both without locking and keeps changes in memory
    only, so a dry run can look at a live daemon's state without touching it.
    """

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._clock = clock
        self._lock = threading.RLock()
        self._lock_file: Any = None
        self.journal_path = self.path.with_name(self.path.name + ".journal")
        self._journal: TextIO | None = None
        self._journal_lines = 0
        if not read_only:
            self._acquire_file_lock()
        try:
            self._data = self._load()
            self._replay_journal()
            if not read_only:
                self._compact()
        except StateFileError:
            self.close()
            raise

    # --- lifecycle -----------------------------------------------------------------

    def _acquire_file_lock(self) -> None:
        self._lock_file = lock_exclusively(
            self.path, "stop it first, or give this one its own STATE_FILE"
        )

    def close(self) -> None:
        with self._lock:
            try:
                if self._journal is not None and self._journal_lines:
                    self._compact()
            finally:
                if self._journal is not None:
                    self._journal.close()
                    self._journal = None
                if self._lock_file is not None:
                    try:
                        self._lock_file.close()  # closing releases the flock
                    finally:
                        self._lock_file = None

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _load(self) -> _Data:
        document = read_json(self.path, "state file")
        if document is None:
            return _Data()
        try:
            return self._parse(document)
        except (TypeError, ValueError) as exc:
            raise StateFileError(
                f"{self.path}: the state file has an unexpected shape ({exc}); "
                "it was left unchanged - repair it or move it away"
            ) from exc

    @staticmethod
    def _parse(document: Any) -> _Data:
        if not isinstance(document, dict):
            raise ValueError("the top level is not an object")
        version = document.get("version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ValueError(f"format version {version!r}, this daemon reads {FORMAT_VERSION}")
        cursor = document.get("cursor", {})
        if not isinstance(cursor, dict):
            raise ValueError("'cursor' is not an object")
        updated_at = cursor.get("updated_at")
        if updated_at is not None and not isinstance(updated_at, int):
            raise ValueError("'cursor.updated_at' is not a whole number")
        conversations = document.get("conversations", {})
        if not isinstance(conversations, dict):
            raise ValueError("'conversations' is not an object")
        return _Data(
            cursor=updated_at,
            conversations={
                str(cid): ConversationRecord.from_json(str(cid), entry)
                for cid, entry in conversations.items()
            },
        )

    # --- reading ---------------------------------------------------------------------

    def get(self, conversation_id: str) -> ConversationRecord | None:
        with self._lock:
            record = self._data.conversations.get(conversation_id)
            return replace(record) if record else None

    def records(self) -> list[ConversationRecord]:
        with self._lock:
            return [replace(r) for r in self._data.conversations.values()]

    def __len__(self) -> int:
        with self._lock:
            return len(self._data.conversations)

    @property
    def cursor(self) -> int | None:
        with self._lock:
            return self._data.cursor

    def dead_letters(self) -> list[ConversationRecord]:
        with self._lock:
            return [replace(r) for r in self._data.conversations.values() if r.state == FAILED]

    def oldest_waiting(self) -> int | None:
        """When the oldest customer message still waiting on the daemon was written."""
        with self._lock:
            times = [
                r.customer_message_at
                for r in self._data.conversations.values()
                if r.state in WAITING_ON_DAEMON and r.customer_message_at
            ]
            return min(times) if times else None

    def retry_dead_letters(self, conversation_id: str | None = None) -> list[str]:
        """Put dead letters back in the queue (all, or one); returns the ids."""
        with self._lock:
            now = self._clock()
            retried = []
            for cid, record in self._data.conversations.items():
                if record.state != FAILED or conversation_id not in (None, cid):
                    continue
                self._data.conversations[cid] = replace(
                    record,
                    state=WAITING,
                    attempts=0,
                    due_at=now,
                    retry_requested=True,
                    reason="retried from the dead letters",
                    updated_at=now,
                )
                retried.append(cid)
            if retried:
                self._write(
                    [
                        {"put": cid, "record": self._data.conversations[cid].to_json()}
                        for cid in retried
                    ]
                )
            return retried

    def in_review(self) -> list[ConversationRecord]:
        with self._lock:
            return [replace(r) for r in self._data.conversations.values() if r.state == IN_REVIEW]

    def due(self, now: float) -> list[ConversationRecord]:
        """Records to look at regardless of the search: in flight, or waiting and due."""
        with self._lock:
            return [
                replace(r)
                for r in self._data.conversations.values()
                if r.state in IN_FLIGHT_STATES
                or (r.state == WAITING and (r.due_at is None or r.due_at <= now))
            ]

    def session(self, conversation_id: str) -> str | None:
        """A responder's session id for this conversation, unless it has expired."""
        with self._lock:
            record = self._data.conversations.get(conversation_id)
            if record is None or record.session_id is None:
                return None
            if record.session_expires_at is not None and record.session_expires_at <= self._clock():
                return None
            return record.session_id

    # --- writing ---------------------------------------------------------------------

    def put(self, record: ConversationRecord) -> None:
        with self._lock:
            now = self._clock()
            stored = replace(record, updated_at=now)
            if not stored.created_at:
                previous = self._data.conversations.get(record.conversation_id)
                stored.created_at = previous.created_at if previous else now
            self._data.conversations[record.conversation_id] = stored
            self._write([{"put": record.conversation_id, "record": stored.to_json()}])

    def set_cursor(self, updated_at: int) -> None:
        with self._lock:
            if self._data.cursor == updated_at:
                return
            self._data.cursor = updated_at
            self._write([{"cursor": updated_at}])

    def prune(self, ttl_seconds: float) -> int:
        """Forget finished conversations and sessions older than `ttl_seconds`.

        Forgetting is safe: Intercom itself shows our replies and marked notes, so a
        pruned conversation that changes again is judged from Intercom's answer.
        """
        with self._lock:
            now = self._clock()
            changes: list[dict[str, Any]] = []
            for cid, record in list(self._data.conversations.items()):
                if record.state in FINISHED_STATES and record.updated_at + ttl_seconds <= now:
                    del self._data.conversations[cid]
                    changes.append({"delete": cid})
                elif record.session_expires_at is not None and record.session_expires_at <= now:
                    record.session_id = None
                    record.session_expires_at = None
                    changes.append({"put": cid, "record": record.to_json()})
            if changes:
                self._write(changes)
            return sum(1 for change in changes if "delete" in change)

    def _document(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "cursor": {"updated_at": self._data.cursor},
            "conversations": {
                cid: record.to_json() for cid, record in self._data.conversations.items()
            },
        }

    def _write(self, changes: list[dict[str, Any]]) -> None:
        """Append the changes to the journal and fsync: on disk before we go on."""
        if self.read_only:
            return
        if self._journal is None:
            self._journal = open(self.journal_path, "a", encoding="utf-8")  # noqa: SIM115
        text = "".join(json.dumps(c, separators=(",", ":")) + "\n" for c in changes)
        self._journal.write(text)
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._journal_lines += len(changes)
        if self._journal_lines >= max(COMPACT_MIN_LINES, len(self._data.conversations)):
            self._compact()

    def _compact(self) -> None:
        """Fold the journal into the snapshot; a crash in between only replays it again."""
        write_atomically(self.path, self._document())
        if self._journal is not None:
            self._journal.close()
        self._journal = open(self.journal_path, "w", encoding="utf-8")  # noqa: SIM115
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._journal_lines = 0

    def _replay_journal(self) -> None:
        try:
            raw = self.journal_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except (OSError, UnicodeDecodeError) as exc:
            raise StateFileError(
                f"{self.journal_path}: cannot read the state journal ({exc}); it was left unchanged"
            ) from exc
        lines = raw.split("\n")
        last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
        for number, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                self._apply(json.loads(line))
            except (ValueError, TypeError, KeyError) as exc:
                if number == last and not raw.endswith("\n"):
                    logging.getLogger(__name__).warning(
                        "%s: dropped a torn last line (a write cut short by a crash)",
                        self.journal_path,
                    )
                    return
                raise StateFileError(
                    f"{self.journal_path}: line {number + 1} of the state journal is not a "
                    f"valid change ({exc}); both files were left unchanged - repair it or "
                    "move it away"
                ) from exc

    def _apply(self, change: Any) -> None:
        if not isinstance(change, dict):
            raise ValueError("not an object")
        if "put" in change:
            cid = str(change["put"])
            self._data.conversations[cid] = ConversationRecord.from_json(cid, change["record"])
        elif "delete" in change:
            self._data.conversations.pop(str(change["delete"]), None)
        elif "cursor" in change:
            cursor = change["cursor"]
            if cursor is not None and not isinstance(cursor, int):
                raise ValueError("cursor is not a whole number")
            self._data.cursor = cursor
        else:
            raise ValueError(f"unknown change {sorted(change)}")


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


def lock_exclusively(path: Path, advice: str) -> TextIO:
    """Hold `<path>.lock` for the life of the process; a second holder fails at once."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the process lifetime
    except OSError as exc:
        raise StateFileError(f"{lock_path}: cannot create the lock file: {exc.strerror}") from exc
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise StateLockedError(
            f"{path}: already in use by another intercom-responder (pid {holder}); {advice}"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def write_atomically(path: Path, document: Any) -> None:
    """Temp file, fsync, rename, fsync the directory: a crash leaves old or new, never half."""
    payload = json.dumps(document, separators=(",", ":"), sort_keys=True)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            tmp.write(payload)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_json(path: Path, what: str) -> Any:
    """The document at `path`, None when missing; unreadable files are an error, untouched."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise StateFileError(
            f"{path}: cannot read the {what} ({exc}); it was left unchanged"
        ) from exc
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StateFileError(
            f"{path}: the {what} is not valid JSON (line {exc.lineno}, column "
            f"{exc.colno}: {exc.msg}); it was left unchanged - repair it or move it away"
        ) from exc


@dataclass
class SyncJob:
    """One history sync: which conversations, and how far it got."""

    since: int | None
    limit: int | None
    conversation_ids: list[str]
    position: int = 0
    finished: bool = False
    started_at: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


class SyncProgress:
    """The sync's position, beside the state file (`sessions.sync.json`), locked like it.

    Separate from the daemon's state file so that `sync` can run while the daemon runs;
    written after every conversation, so Ctrl-C or a crash loses at most one.
    """

    def __init__(self, state_file: Path) -> None:
        state_file = Path(state_file)
        self.path = state_file.with_name(f"{state_file.stem}.sync.json")
        self._lock_file: TextIO | None = lock_exclusively(
            self.path, "wait for the other sync to finish"
        )
        try:
            self.job = self._load()
        except StateFileError:
            self.close()
            raise

    def _load(self) -> SyncJob | None:
        document = read_json(self.path, "sync progress file")
        if document is None:
            return None
        try:
            job = document["job"]
            return SyncJob(
                since=job["since"],
                limit=job["limit"],
                conversation_ids=[str(i) for i in job["conversation_ids"]],
                position=int(job["position"]),
                finished=bool(job["finished"]),
                started_at=float(job.get("started_at") or 0.0),
                counts={str(k): int(v) for k, v in (job.get("counts") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateFileError(
                f"{self.path}: the sync progress file has an unexpected shape ({exc}); "
                "move it away to start the sync anew"
            ) from exc

    def save(self, job: SyncJob) -> None:
        self.job = job
        write_atomically(self.path, {"version": FORMAT_VERSION, "job": asdict(job)})

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> SyncProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
