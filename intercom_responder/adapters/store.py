"""The state file: what was done for each conversation, and where the search stopped.

Exactly-once rests on two things here. Before a reply or note is sent, the intent is
written (state `SENDING`, with the customer part it answers); after Intercom accepts
it, the result is written. A crash between the two leaves `SENDING` behind, and the
pipeline then looks in the conversation for its own part instead of sending again.
Every change is appended to a journal and fsynced before the call returns, so a crash
loses no acknowledged change; the snapshot is replaced atomically (temp file, fsync,
rename), so a crash never leaves half a file. A file that cannot be read stops the
start and is never overwritten.

The store keeps records; it never decides a state. States change only through the
transitions of `core.records.ConversationRecord`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TextIO

from ..core.records import (
    FINISHED_STATES,
    IN_FLIGHT_STATES,
    WAITING_ON_DAEMON,
    ConversationRecord,
    State,
)
from ..core.ticket_records import FINISHED_TICKET_STATES, TicketRecord, TicketState
from ..defaults import COMPACT_MIN_LINES, TICKET_RECORD_DAYS
from .files import StateFileError, lock_exclusively, read_json, write_atomically

FORMAT_VERSION = 1


class Store(Protocol):
    """What the flow needs of the state, whichever backend keeps it (STATE_BACKEND):
    this file store, or PostgreSQL (`adapters.pg_store`)."""

    read_only: bool

    def get(self, conversation_id: str) -> ConversationRecord | None: ...
    def record_for(self, conversation_id: str) -> ConversationRecord: ...
    def put(self, record: ConversationRecord) -> ConversationRecord: ...
    def __len__(self) -> int: ...
    def dead_letters(self) -> list[ConversationRecord]: ...
    def in_review(self) -> list[ConversationRecord]: ...
    def due(self, now: float) -> list[ConversationRecord]: ...
    def oldest_waiting(self) -> int | None: ...
    def retry_dead_letters(self, conversation_id: str | None = None) -> list[str]: ...
    def session(self, conversation_id: str) -> str | None: ...
    def prune(self, ttl_seconds: float) -> int: ...
    @property
    def cursor(self) -> int | None: ...
    def set_cursor(self, updated_at: int) -> None: ...
    @property
    def sweep_cursor(self) -> int | None: ...
    def set_sweep_cursor(self, updated_at: int) -> None: ...
    @property
    def ticket_cursor(self) -> int | None: ...
    def set_ticket_cursor(self, updated_at: int) -> None: ...
    def ticket(self, ticket_id: str) -> TicketRecord | None: ...
    def tickets_to_assign(self) -> list[TicketRecord]: ...
    def put_ticket(self, record: TicketRecord) -> TicketRecord: ...
    def snapshot(self) -> dict[str, Any]: ...
    def is_empty(self) -> bool: ...
    def restore(
        self,
        conversations: dict[str, ConversationRecord],
        tickets: dict[str, TicketRecord],
        cursors: dict[str, int | None],
    ) -> None: ...
    def close(self) -> None: ...


@dataclass
class _Data:
    cursor: int | None = None  # the poll's search: newest updated_at it saw
    sweep_cursor: int | None = None  # the same for the sweep (no waiting_since filter)
    conversations: dict[str, ConversationRecord] = field(default_factory=dict)
    ticket_cursor: int | None = None  # the ticket search's (ROUTE_TICKETS)
    tickets: dict[str, TicketRecord] = field(default_factory=dict)


class StateStore:
    """Thread-safe; every change is on disk before the method returns.

    Records are immutable, so `get` hands out the stored record itself, without a copy.

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

    @classmethod
    def in_memory(cls, document: Any, *, name: str) -> StateStore:
        """A read-only store holding `document` (a dry run on the PostgreSQL backend looks
        at its state this way, and changes nothing there)."""
        store = cls.__new__(cls)
        store.path = Path(name)
        store.read_only = True
        store._clock = time.time
        store._lock = threading.RLock()
        store._lock_file = None
        store.journal_path = Path(name + ".journal")
        store._journal = None
        store._journal_lines = 0
        try:
            store._data = cls._parse(document)
        except (TypeError, ValueError) as exc:
            raise StateFileError(f"{name}: unexpected state ({exc})") from exc
        return store

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
        swept = cursor.get("sweep_updated_at")
        if swept is not None and not isinstance(swept, int):
            raise ValueError("'cursor.sweep_updated_at' is not a whole number")
        tickets_at = cursor.get("tickets_updated_at")
        if tickets_at is not None and not isinstance(tickets_at, int):
            raise ValueError("'cursor.tickets_updated_at' is not a whole number")
        conversations = document.get("conversations", {})
        if not isinstance(conversations, dict):
            raise ValueError("'conversations' is not an object")
        tickets = document.get("tickets", {})
        if not isinstance(tickets, dict):
            raise ValueError("'tickets' is not an object")
        return _Data(
            cursor=updated_at,
            sweep_cursor=swept,
            conversations={
                str(cid): ConversationRecord.from_json(str(cid), entry)
                for cid, entry in conversations.items()
            },
            ticket_cursor=tickets_at,
            tickets={str(tid): TicketRecord.from_json(str(tid), e) for tid, e in tickets.items()},
        )

    # --- reading ---------------------------------------------------------------------

    def get(self, conversation_id: str) -> ConversationRecord | None:
        with self._lock:
            return self._data.conversations.get(conversation_id)

    def record_for(self, conversation_id: str) -> ConversationRecord:
        """The record, or a new one for a conversation not recorded yet."""
        return self.get(conversation_id) or ConversationRecord.new(conversation_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data.conversations)

    @property
    def cursor(self) -> int | None:
        with self._lock:
            return self._data.cursor

    def dead_letters(self) -> list[ConversationRecord]:
        with self._lock:
            return [r for r in self._data.conversations.values() if r.state is State.FAILED]

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
                if record.state is not State.FAILED or conversation_id not in (None, cid):
                    continue
                self._data.conversations[cid] = replace(record.retried(now), updated_at=now)
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
            return [r for r in self._data.conversations.values() if r.state is State.IN_REVIEW]

    def due(self, now: float) -> list[ConversationRecord]:
        """Records to look at regardless of the search: in flight, or waiting and due."""
        with self._lock:
            return [
                r
                for r in self._data.conversations.values()
                if r.state in IN_FLIGHT_STATES
                or (r.state is State.WAITING and (r.due_at is None or r.due_at <= now))
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

    def put(self, record: ConversationRecord) -> ConversationRecord:
        """Keep `record` (on disk before this returns); returns it as stored."""
        with self._lock:
            now = self._clock()
            created_at = record.created_at
            if not created_at:
                previous = self._data.conversations.get(record.conversation_id)
                created_at = previous.created_at if previous else now
            stored = replace(record, created_at=created_at, updated_at=now)
            self._data.conversations[record.conversation_id] = stored
            self._write([{"put": record.conversation_id, "record": stored.to_json()}])
            return stored

    def set_cursor(self, updated_at: int) -> None:
        with self._lock:
            if self._data.cursor == updated_at:
                return
            self._data.cursor = updated_at
            self._write([{"cursor": updated_at}])

    @property
    def sweep_cursor(self) -> int | None:
        with self._lock:
            return self._data.sweep_cursor

    def set_sweep_cursor(self, updated_at: int) -> None:
        with self._lock:
            if self._data.sweep_cursor == updated_at:
                return
            self._data.sweep_cursor = updated_at
            self._write([{"sweep_cursor": updated_at}])

    # --- tickets (ROUTE_TICKETS) -------------------------------------------------------

    def ticket(self, ticket_id: str) -> TicketRecord | None:
        with self._lock:
            return self._data.tickets.get(ticket_id)

    def tickets_to_assign(self) -> list[TicketRecord]:
        """Routed, not yet assigned: a restart or a failed assignment left them."""
        with self._lock:
            return [t for t in self._data.tickets.values() if t.state is TicketState.ROUTED]

    def put_ticket(self, record: TicketRecord) -> TicketRecord:
        """Keep `record` (on disk before this returns); returns it as stored."""
        with self._lock:
            stored = replace(record, updated_at=self._clock())
            self._data.tickets[record.ticket_id] = stored
            self._write([{"ticket": record.ticket_id, "record": stored.to_json()}])
            return stored

    @property
    def ticket_cursor(self) -> int | None:
        with self._lock:
            return self._data.ticket_cursor

    def set_ticket_cursor(self, updated_at: int) -> None:
        with self._lock:
            if self._data.ticket_cursor == updated_at:
                return
            self._data.ticket_cursor = updated_at
            self._write([{"ticket_cursor": updated_at}])

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
                    expired = record.session_expired()
                    self._data.conversations[cid] = expired
                    changes.append({"put": cid, "record": expired.to_json()})
            ticket_ttl = TICKET_RECORD_DAYS * 86400
            for tid, ticket in list(self._data.tickets.items()):
                if ticket.state in FINISHED_TICKET_STATES and ticket.updated_at + ticket_ttl <= now:
                    del self._data.tickets[tid]
                    changes.append({"delete_ticket": tid})
            if changes:
                self._write(changes)
            return sum(1 for change in changes if "delete" in change)

    # --- moving (state export / import) ----------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state in the state file's format (`state export`)."""
        with self._lock:
            return self._document()

    def is_empty(self) -> bool:
        with self._lock:
            data = self._data
            return not (data.conversations or data.tickets or data.cursor or data.sweep_cursor)

    def restore(
        self,
        conversations: dict[str, ConversationRecord],
        tickets: dict[str, TicketRecord],
        cursors: dict[str, int | None],
    ) -> None:
        """Replace everything with an imported state (written at once, atomically)."""
        with self._lock:
            self._data = _Data(
                cursor=cursors.get("poll"),
                sweep_cursor=cursors.get("sweep"),
                conversations=dict(conversations),
                ticket_cursor=cursors.get("tickets"),
                tickets=dict(tickets),
            )
            if not self.read_only:
                self._compact()

    def _document(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "cursor": _cursor_document(self._data),
            "conversations": {
                cid: record.to_json() for cid, record in self._data.conversations.items()
            },
            **(
                {"tickets": {tid: t.to_json() for tid, t in self._data.tickets.items()}}
                if self._data.tickets
                else {}
            ),
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
            self._data.cursor = _whole_or_none(change["cursor"], "cursor")
        elif "sweep_cursor" in change:
            self._data.sweep_cursor = _whole_or_none(change["sweep_cursor"], "sweep_cursor")
        elif "ticket" in change:
            tid = str(change["ticket"])
            self._data.tickets[tid] = TicketRecord.from_json(tid, change["record"])
        elif "delete_ticket" in change:
            self._data.tickets.pop(str(change["delete_ticket"]), None)
        elif "ticket_cursor" in change:
            self._data.ticket_cursor = _whole_or_none(change["ticket_cursor"], "ticket_cursor")
        else:
            raise ValueError(f"unknown change {sorted(change)}")


def parse_state_document(
    document: Any,
) -> tuple[dict[str, ConversationRecord], dict[str, TicketRecord], dict[str, int | None]]:
    """A state file's document (`state export`) as records and cursors; ValueError if not."""
    data = StateStore._parse(document)
    cursors = {"poll": data.cursor, "sweep": data.sweep_cursor, "tickets": data.ticket_cursor}
    return data.conversations, data.tickets, cursors


def _cursor_document(data: _Data) -> dict[str, int | None]:
    document: dict[str, int | None] = {"updated_at": data.cursor}
    if data.sweep_cursor is not None:
        document["sweep_updated_at"] = data.sweep_cursor
    if data.ticket_cursor is not None:
        document["tickets_updated_at"] = data.ticket_cursor
    return document


def _whole_or_none(value: Any, what: str) -> int | None:
    if value is not None and not isinstance(value, int):
        raise ValueError(f"{what} is not a whole number")
    return value
