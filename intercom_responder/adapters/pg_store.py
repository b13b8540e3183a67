"""The state in PostgreSQL (STATE_BACKEND=postgres): the file store's promises, in a database.

The same records and the same transitions as the state file (`adapters.store`): a record
is written before the call returns (each statement commits), so the intent of a reply
(`SENDING`) is in the database before the reply is posted. The schema is created at
start and migrated by version (`responder_schema`); a database set up by a newer daemon
stops the start instead of being changed. psycopg is imported here only, and this
module only when the backend is chosen, so `python main.py --help` stays fast.

Several daemons (replicas) can share one database: `PostgresClaims` lets one replica at
a time work on a conversation, and `PostgresFound` shares out what the polling replica
found, so that only one searches Intercom while all of them answer.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from ..core.records import (
    FINISHED_STATES,
    IN_FLIGHT_STATES,
    WAITING_ON_DAEMON,
    ConversationRecord,
    State,
)
from ..core.ticket_records import FINISHED_TICKET_STATES, TicketRecord, TicketState
from ..defaults import FOUND_LIST_LIMIT, LEASE_SECONDS, TICKET_RECORD_DAYS
from .files import StateFileError

#: The schema this daemon writes; `MIGRATIONS[n - 1]` brings a database from n - 1 to n.
SCHEMA_VERSION = 3
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE conversations (
            id text PRIMARY KEY,
            state text NOT NULL,
            record jsonb NOT NULL,
            created_at double precision NOT NULL,
            updated_at double precision NOT NULL,
            due_at double precision
        )""",
        "CREATE INDEX conversations_by_state ON conversations (state)",
        "CREATE TABLE cursors (name text PRIMARY KEY, value bigint)",
        """CREATE TABLE tickets (
            id text PRIMARY KEY,
            state text NOT NULL,
            record jsonb NOT NULL,
            updated_at double precision NOT NULL
        )""",
    ),
    (  # 2: replicas claim the conversations they work on
        """CREATE TABLE claims (
            conversation_id text PRIMARY KEY,
            owner text NOT NULL,
            expires_at double precision NOT NULL
        )""",
    ),
    (  # 3: what the polling replica found, for every replica to take its share of
        """CREATE TABLE found (
            conversation_id text PRIMARY KEY,
            found_at double precision NOT NULL
        )""",
    ),
)
#: Serialises schema changes between daemons starting at the same moment.
_MIGRATION_LOCK = 7_401_337


class StateDatabaseError(StateFileError):
    """The state database cannot be used; the message names DATABASE_URL, never a password."""


def shown_url(url: str) -> str:
    """DATABASE_URL without its password, for messages and logs."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(url)
    except Exception:
        return "DATABASE_URL (unreadable)"
    user = f"{parts.get('user')}@" if parts.get("user") else ""
    port = f":{parts.get('port')}" if parts.get("port") else ""
    return (
        f"postgresql://{user}{parts.get('host') or 'localhost'}{port}/{parts.get('dbname') or ''}"
    )


class PostgresStateStore:
    """Thread-safe: one connection, one statement at a time, each committed at once."""

    read_only = False

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        self._url = url
        self.path = shown_url(url)  # what messages name, like the file store's path
        self._clock = clock
        self._lock = threading.RLock()
        self._connection: Any = None
        with self._lock:
            self._connect()
            self._migrate()

    # --- lifecycle -------------------------------------------------------------------

    def _connect(self) -> None:
        self._connection = _connected(self._url)

    def _migrate(self) -> None:
        with self._transaction() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            cursor.execute("CREATE TABLE IF NOT EXISTS responder_schema (version integer NOT NULL)")
            cursor.execute("SELECT max(version) FROM responder_schema")
            row = cursor.fetchone()
            version = int(row[0]) if row and row[0] is not None else 0
            if version > SCHEMA_VERSION:
                raise StateDatabaseError(
                    f"DATABASE_URL {self.path}: the database was set up by a newer "
                    f"intercom-responder (schema {version}; this one knows {SCHEMA_VERSION}) - "
                    "upgrade this daemon, it will not change a newer schema"
                )
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1]:
                    cursor.execute(statement)
                cursor.execute("INSERT INTO responder_schema (version) VALUES (%s)", (number,))

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                try:
                    self._connection.close()
                finally:
                    self._connection = None

    def __enter__(self) -> PostgresStateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- statements ------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        import psycopg

        with self._lock:
            if self._connection is None or self._connection.closed:
                self._connect()
            try:
                with self._connection.transaction(), self._connection.cursor() as cursor:
                    yield cursor
            except (
                psycopg.OperationalError
            ) as exc:  # the connection is gone: the next call reconnects
                self._drop()
                raise StateDatabaseError(
                    f"DATABASE_URL {self.path}: the database connection failed "
                    f"({_first_line(exc)}); nothing was recorded"
                ) from None

    def _drop(self) -> None:
        try:
            if self._connection is not None:
                self._connection.close()
        except Exception:
            pass
        self._connection = None

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._transaction() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    # --- conversations ---------------------------------------------------------------

    def get(self, conversation_id: str) -> ConversationRecord | None:
        rows = self._rows("SELECT record FROM conversations WHERE id = %s", (conversation_id,))
        return _record(conversation_id, rows[0][0]) if rows else None

    def record_for(self, conversation_id: str) -> ConversationRecord:
        return self.get(conversation_id) or ConversationRecord.new(conversation_id)

    def __len__(self) -> int:
        return int(self._rows("SELECT count(*) FROM conversations")[0][0])

    def put(self, record: ConversationRecord) -> ConversationRecord:
        """Keep `record` (committed before this returns); returns it as stored."""
        now = self._clock()
        with self._transaction() as cursor:
            cursor.execute(
                "SELECT created_at FROM conversations WHERE id = %s FOR UPDATE",
                (record.conversation_id,),
            )
            row = cursor.fetchone()
            created_at = record.created_at or (float(row[0]) if row else now)
            stored = replace(record, created_at=created_at, updated_at=now)
            cursor.execute(
                """INSERT INTO conversations (id, state, record, created_at, updated_at, due_at)
                   VALUES (%s, %s, %s, %s, %s, %s)
                   ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state,
                       record = EXCLUDED.record, updated_at = EXCLUDED.updated_at,
                       due_at = EXCLUDED.due_at""",
                (
                    stored.conversation_id,
                    stored.state.value,
                    json.dumps(stored.to_json()),
                    created_at,
                    now,
                    stored.due_at,
                ),
            )
        return stored

    def dead_letters(self) -> list[ConversationRecord]:
        return self._by_state(State.FAILED)

    def in_review(self) -> list[ConversationRecord]:
        return self._by_state(State.IN_REVIEW)

    def _by_state(self, state: State) -> list[ConversationRecord]:
        rows = self._rows("SELECT id, record FROM conversations WHERE state = %s", (state.value,))
        return [_record(cid, data) for cid, data in rows]

    def due(self, now: float) -> list[ConversationRecord]:
        rows = self._rows(
            """SELECT id, record FROM conversations
               WHERE state = ANY(%s) OR (state = %s AND (due_at IS NULL OR due_at <= %s))""",
            ([s.value for s in IN_FLIGHT_STATES], State.WAITING.value, now),
        )
        return [_record(cid, data) for cid, data in rows]

    def oldest_waiting(self) -> int | None:
        rows = self._rows(
            """SELECT min((record->>'customer_message_at')::bigint) FROM conversations
               WHERE state = ANY(%s) AND (record->>'customer_message_at')::bigint > 0""",
            ([s.value for s in WAITING_ON_DAEMON],),
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def retry_dead_letters(self, conversation_id: str | None = None) -> list[str]:
        letters = [r for r in self.dead_letters() if conversation_id in (None, r.conversation_id)]
        now = self._clock()
        for record in letters:
            self.put(record.retried(now))  # put sets updated_at
        return [r.conversation_id for r in letters]

    def session(self, conversation_id: str) -> str | None:
        record = self.get(conversation_id)
        if record is None or record.session_id is None:
            return None
        if record.session_expires_at is not None and record.session_expires_at <= self._clock():
            return None
        return record.session_id

    def prune(self, ttl_seconds: float) -> int:
        """Forget finished conversations and sessions older than `ttl_seconds` (see the
        file store: Intercom itself shows what was done)."""
        now = self._clock()
        with self._transaction() as cursor:
            cursor.execute(
                "DELETE FROM conversations WHERE state = ANY(%s) AND updated_at + %s <= %s",
                ([s.value for s in FINISHED_STATES], ttl_seconds, now),
            )
            pruned = int(cursor.rowcount or 0)
            cursor.execute(
                "DELETE FROM tickets WHERE state = ANY(%s) AND updated_at + %s <= %s",
                (
                    [s.value for s in FINISHED_TICKET_STATES],
                    TICKET_RECORD_DAYS * 86400,
                    now,
                ),
            )
            cursor.execute(
                """SELECT id, record FROM conversations
                   WHERE (record->>'session_expires_at')::double precision <= %s""",
                (now,),
            )
            expired = list(cursor.fetchall())
        for cid, data in expired:
            self.put(_record(cid, data).session_expired())
        return pruned

    # --- cursors ---------------------------------------------------------------------

    @property
    def cursor(self) -> int | None:
        return self._cursor("poll")

    def set_cursor(self, updated_at: int) -> None:
        self._set_cursor("poll", updated_at)

    @property
    def sweep_cursor(self) -> int | None:
        return self._cursor("sweep")

    def set_sweep_cursor(self, updated_at: int) -> None:
        self._set_cursor("sweep", updated_at)

    @property
    def ticket_cursor(self) -> int | None:
        return self._cursor("tickets")

    def set_ticket_cursor(self, updated_at: int) -> None:
        self._set_cursor("tickets", updated_at)

    def _cursor(self, name: str) -> int | None:
        rows = self._rows("SELECT value FROM cursors WHERE name = %s", (name,))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def _set_cursor(self, name: str, value: int | None) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                """INSERT INTO cursors (name, value) VALUES (%s, %s)
                   ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value""",
                (name, value),
            )

    # --- tickets ---------------------------------------------------------------------

    def ticket(self, ticket_id: str) -> TicketRecord | None:
        rows = self._rows("SELECT record FROM tickets WHERE id = %s", (ticket_id,))
        return _ticket(ticket_id, rows[0][0]) if rows else None

    def tickets_to_assign(self) -> list[TicketRecord]:
        rows = self._rows(
            "SELECT id, record FROM tickets WHERE state = %s", (TicketState.ROUTED.value,)
        )
        return [_ticket(tid, data) for tid, data in rows]

    def put_ticket(self, record: TicketRecord) -> TicketRecord:
        stored = replace(record, updated_at=self._clock())
        with self._transaction() as cursor:
            cursor.execute(
                """INSERT INTO tickets (id, state, record, updated_at) VALUES (%s, %s, %s, %s)
                   ON CONFLICT (id) DO UPDATE SET state = EXCLUDED.state,
                       record = EXCLUDED.record, updated_at = EXCLUDED.updated_at""",
                (
                    stored.ticket_id,
                    stored.state.value,
                    json.dumps(stored.to_json()),
                    stored.updated_at,
                ),
            )
        return stored

    # --- moving (state export / import) ----------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state in the state file's format (`state export`)."""
        cursors = {name: self._cursor(name) for name in ("poll", "sweep", "tickets")}
        document: dict[str, Any] = {
            "version": 1,
            "cursor": {"updated_at": cursors["poll"]},
            "conversations": {
                cid: _record(cid, data).to_json()
                for cid, data in self._rows("SELECT id, record FROM conversations ORDER BY id")
            },
        }
        if cursors["sweep"] is not None:
            document["cursor"]["sweep_updated_at"] = cursors["sweep"]
        if cursors["tickets"] is not None:
            document["cursor"]["tickets_updated_at"] = cursors["tickets"]
        tickets = self._rows("SELECT id, record FROM tickets ORDER BY id")
        if tickets:
            document["tickets"] = {tid: _ticket(tid, data).to_json() for tid, data in tickets}
        return document

    def restore(
        self,
        conversations: dict[str, ConversationRecord],
        tickets: dict[str, TicketRecord],
        cursors: dict[str, int | None],
    ) -> None:
        """Replace everything with an imported state, in one transaction."""
        with self._transaction() as cursor:
            for table in ("conversations", "tickets", "cursors", "found"):
                cursor.execute(f"DELETE FROM {table}")
            for record in conversations.values():
                cursor.execute(
                    """INSERT INTO conversations (id, state, record, created_at, updated_at,
                       due_at) VALUES (%s, %s, %s, %s, %s, %s)""",
                    (
                        record.conversation_id,
                        record.state.value,
                        json.dumps(record.to_json()),
                        record.created_at,
                        record.updated_at,
                        record.due_at,
                    ),
                )
            for ticket in tickets.values():
                cursor.execute(
                    "INSERT INTO tickets (id, state, record, updated_at) VALUES (%s, %s, %s, %s)",
                    (
                        ticket.ticket_id,
                        ticket.state.value,
                        json.dumps(ticket.to_json()),
                        ticket.updated_at,
                    ),
                )
            for name, value in cursors.items():
                if value is not None:
                    cursor.execute(
                        "INSERT INTO cursors (name, value) VALUES (%s, %s)", (name, value)
                    )

    def is_empty(self) -> bool:
        return not self._rows(
            "SELECT 1 FROM conversations UNION ALL SELECT 1 FROM tickets "
            "UNION ALL SELECT 1 FROM cursors WHERE value IS NOT NULL LIMIT 1"
        )


class PostgresClaims:
    """Which replica works on which conversation, with leases in the database's own time.

    A claim is taken when nobody holds it or its lease ran out, and renewed every third
    of LEASE_SECONDS by a thread of its own while held; a replica killed with SIGKILL
    stops renewing, and another one takes the conversation over after the lease. The
    database's clock decides, so replicas on machines whose clocks differ agree.
    """

    def __init__(
        self, store: PostgresStateStore, *, owner: str, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self._store = store
        self.owner = owner
        self._lease = lease_seconds
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="claims", daemon=True)
        self._thread.start()

    def claim(self, conversation_id: str) -> bool:
        if not self._take(conversation_id, self._lease):
            return False
        with self._held_lock:
            self._held.add(conversation_id)
        return True

    def lead(self, name: str) -> bool:
        """Hold the lease called `name` (the poll's: "~poll", beside the claims under a name
        no conversation id has): True while this replica holds it. Held, it is renewed
        with the claims, so a dead leader loses it within LEASE_SECONDS however long its
        poll interval has grown."""
        key = f"~{name}"
        taken = self._take(key, self._lease)
        with self._held_lock:
            if taken:
                self._held.add(key)
            else:
                self._held.discard(key)
        return taken

    def _take(self, key: str, seconds: float) -> bool:
        """Taken when free, when its lease ran out, or already ours (then renewed)."""
        rows = self._store._rows(
            """INSERT INTO claims (conversation_id, owner, expires_at)
               VALUES (%s, %s, extract(epoch from clock_timestamp()) + %s)
               ON CONFLICT (conversation_id) DO UPDATE
                   SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
                   WHERE claims.owner = EXCLUDED.owner
                      OR claims.expires_at < extract(epoch from clock_timestamp())
               RETURNING owner""",
            (key, self.owner, seconds),
        )
        return bool(rows)

    def release(self, conversation_id: str) -> None:
        with self._held_lock:
            self._held.discard(conversation_id)
        with contextlib.suppress(StateDatabaseError):  # else the lease runs out by itself
            self._store._rows(
                "DELETE FROM claims WHERE conversation_id = %s AND owner = %s RETURNING 1",
                (conversation_id, self.owner),
            )

    def close(self) -> None:
        """Stop renewing; a lease it leads is handed on at once (a claim is released by
        the work that holds it)."""
        self._stop.set()
        self._thread.join(timeout=5)
        with self._held_lock:
            leases = sorted(key for key in self._held if key.startswith("~"))
        for key in leases:
            self.release(key)

    def _renew(self) -> None:
        while not self._stop.wait(self._lease / 3):
            with self._held_lock:
                held = sorted(self._held)
            if not held:
                continue
            try:
                self._store._rows(
                    """UPDATE claims SET expires_at = extract(epoch from clock_timestamp()) + %s
                       WHERE owner = %s AND conversation_id = ANY(%s) RETURNING 1""",
                    (self._lease, self.owner, held),
                )
            except StateDatabaseError:
                continue  # the next turn tries again; meanwhile the lease may run out


class PostgresFound:
    """The conversations the polling replica found and nobody has handled yet.

    Only one replica searches Intercom (the poll lease); without this list it would also
    be the only one answering, and N replicas would drain a burst no faster than one.
    The leader lists what it finds; every replica handles what is listed, the claims
    keeping two from taking the same conversation, and the one that handled it takes it
    off the list. A replica that dies leaves its entries for the others. `found_at` is
    the database's clock, and marks which finding a handling answered: a conversation
    found again meanwhile stays listed and is looked at once more.
    """

    def __init__(self, store: PostgresStateStore) -> None:
        self._store = store

    def share(self, conversation_ids: Sequence[str]) -> None:
        if not conversation_ids:
            return
        self._store._rows(
            """INSERT INTO found (conversation_id, found_at)
               SELECT id, extract(epoch from clock_timestamp()) FROM unnest(%s::text[]) AS id
               ON CONFLICT (conversation_id) DO UPDATE SET found_at = EXCLUDED.found_at
               RETURNING 1""",
            (list(conversation_ids),),
        )

    def listed(self, limit: int = FOUND_LIST_LIMIT) -> dict[str, float]:
        """Conversation id -> when it was found, the longest waiting first."""
        rows = self._store._rows(
            "SELECT conversation_id, found_at FROM found ORDER BY found_at LIMIT %s", (limit,)
        )
        return {str(cid): float(found_at) for cid, found_at in rows}

    def found_at(self, conversation_id: str) -> float | None:
        rows = self._store._rows(
            "SELECT found_at FROM found WHERE conversation_id = %s", (conversation_id,)
        )
        return float(rows[0][0]) if rows else None

    def handled(self, conversation_id: str, found_at: float) -> None:
        """Off the list, unless it was found again since `found_at`."""
        self._store._rows(
            "DELETE FROM found WHERE conversation_id = %s AND found_at <= %s RETURNING 1",
            (conversation_id, found_at),
        )


@dataclass(frozen=True)
class DatabaseStatus:
    """What `check` says of the state database."""

    schema: int | None  # None: no tables yet (the first start creates them)
    replicas: int  # daemons holding a claim or a lease that has not run out
    leader: str | None  # the owner of the poll lease, "host:pid:id"


def inspect_database(url: str) -> DatabaseStatus:
    """Reads only: unlike opening a store, nothing is created or migrated."""
    import psycopg

    with _connected(url) as connection:
        try:
            row = connection.execute("SELECT max(version) FROM responder_schema").fetchone()
        except psycopg.errors.UndefinedTable:
            return DatabaseStatus(schema=None, replicas=0, leader=None)
        schema = int(row[0]) if row and row[0] is not None else None
        if schema is None or schema < 2:  # no claims table yet
            return DatabaseStatus(schema=schema, replicas=0, leader=None)
        live = "expires_at > extract(epoch from clock_timestamp())"
        owners = connection.execute(f"SELECT count(DISTINCT owner) FROM claims WHERE {live}")
        count = owners.fetchone()
        leading = connection.execute(
            f"SELECT owner FROM claims WHERE conversation_id = '~poll' AND {live}"
        ).fetchone()
    return DatabaseStatus(
        schema=schema,
        replicas=int(count[0]) if count else 0,
        leader=str(leading[0]) if leading else None,
    )


def _connected(url: str) -> Any:
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise StateDatabaseError(
            f"DATABASE_URL {shown_url(url)}: cannot connect ({_first_line(exc)}); check that "
            "PostgreSQL runs there and the user and password are right"
        ) from None


def _record(conversation_id: str, data: Any) -> ConversationRecord:
    return ConversationRecord.from_json(
        conversation_id, data if isinstance(data, dict) else json.loads(data)
    )


def _ticket(ticket_id: str, data: Any) -> TicketRecord:
    return TicketRecord.from_json(ticket_id, data if isinstance(data, dict) else json.loads(data))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
