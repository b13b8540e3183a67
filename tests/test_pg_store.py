"""The state in PostgreSQL (STATE_BACKEND=postgres), against a real throwaway server the
tests start themselves (see `tests/postgres.py`): the store's behaviour on both backends,
the schema and its version, clear start errors, and moving a state between backends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from intercom_responder.adapters.files import StateFileError
from intercom_responder.adapters.store import StateStore, Store
from intercom_responder.bootstrap import App
from intercom_responder.core.records import ConversationRecord, PendingReview, RouteTaken, State
from intercom_responder.core.ticket_records import TicketRecord
from intercom_responder.flow.outcome import Outcome
from intercom_responder.flow.poller import CycleResult
from tests.conftest import ADMIN_ID, daemon_env, run_main, waiting_customer
from tests.fakes.intercom import FakeIntercom
from tests.fakes.openai_server import FakeOpenAI
from tests.postgres import PostgresServer

pytestmark = pytest.mark.openai_only

MakeApp = Callable[..., App]


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["file", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Store]]:
    """Opens a store of one backend on the same place each time (a restart)."""
    opened: list[Store] = []
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else ""

    def open_store(clock: Callable[[], float] | None = None) -> Store:
        from intercom_responder.adapters.pg_store import PostgresStateStore

        store: Store = (
            PostgresStateStore(url, clock=clock or Clock())
            if request.param == "postgres"
            else StateStore(tmp_path / "sessions.json", clock=clock or Clock())
        )
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def review() -> PendingReview:
    return PendingReview(
        customer_part_id="p1",
        customer_name="Ada",
        question="How?",
        draft="Like this.",
        confidence=0.5,
        reasoning="",
        reason="low",
        url=None,
        requested_at=1.0,
        expires_at=2.0,
        channel="C1",
        ts="123.4",
    )


def test_records_cursors_and_tickets_survive_a_restart(backend: Callable[..., Store]) -> None:
    store = backend()
    assert store.is_empty() and store.get("1") is None and store.cursor is None
    sent = store.put(ConversationRecord("1", State.SENDING, customer_part_id="p1"))
    store.put(ConversationRecord("2", State.IN_REVIEW, customer_part_id="p1", review=review()))
    store.put(ConversationRecord("3", State.FAILED, attempts=5, last_error="boom"))
    store.set_cursor(1_700_000_001)
    store.set_sweep_cursor(1_700_000_002)
    store.set_ticket_cursor(1_700_000_003)
    store.put_ticket(TicketRecord.routed("7001", RouteTaken("11", "Billing", 0.9, "invoice")))
    store.close()

    again = backend()
    assert again.get("1") == sent and len(again) == 3 and not again.is_empty()
    assert [r.conversation_id for r in again.in_review()] == ["2"]
    assert again.in_review()[0].review == review()
    assert [r.conversation_id for r in again.dead_letters()] == ["3"]
    assert (again.cursor, again.sweep_cursor, again.ticket_cursor) == (
        1_700_000_001,
        1_700_000_002,
        1_700_000_003,
    )
    [ticket] = again.tickets_to_assign()
    assert ticket.route.team_name == "Billing"
    assert {r.conversation_id for r in again.due(0.0)} == {"1"}  # SENDING is always due


def test_due_waiting_retry_sessions_and_prune(backend: Callable[..., Store]) -> None:
    clock = Clock()
    store = backend(clock)
    store.put(ConversationRecord("w", State.WAITING, due_at=clock.now + 60))
    store.put(ConversationRecord("f", State.FAILED, attempts=5))
    store.put(
        ConversationRecord(
            "s", State.AWAITING_USER_REPLY, session_id="sess", session_expires_at=clock.now + 10
        )
    )
    assert store.due(clock.now) == [] and store.session("s") == "sess"
    assert [r.conversation_id for r in store.due(clock.now + 61)] == ["w"]
    assert store.retry_dead_letters("nope") == [] and store.retry_dead_letters() == ["f"]
    retried = store.get("f")
    assert retried is not None and retried.state is State.WAITING and retried.retry_requested
    clock.now += 20
    assert store.session("s") is None  # expired
    clock.now += 100_000
    assert store.prune(3600) == 1  # the finished one; the waiting ones stay
    assert store.get("s") is None and store.get("w") is not None


def test_an_export_imports_into_the_other_backend_unchanged(
    backend: Callable[..., Store], tmp_path: Path, postgres_server: PostgresServer
) -> None:
    from intercom_responder.adapters.pg_store import PostgresStateStore
    from intercom_responder.adapters.store import parse_state_document

    source = backend()
    source.put(ConversationRecord("1", State.AWAITING_USER_REPLY, reply_part_id="r1"))
    source.put(ConversationRecord("2", State.IN_REVIEW, review=review()))
    source.put_ticket(TicketRecord.routed("7", RouteTaken(None, None, 0.1, "?", "low_confidence")))
    source.set_cursor(1_700_000_001)
    document = json.loads(json.dumps(source.snapshot()))
    target: Store = (
        StateStore(tmp_path / "other.json")
        if isinstance(source, PostgresStateStore)
        else PostgresStateStore(postgres_server.new_database(postgres_server.unique_name("move")))
    )
    try:
        assert target.is_empty()
        target.restore(*parse_state_document(document))
        assert target.snapshot() == document
        assert target.get("2") == source.get("2")
    finally:
        target.close()


def test_the_schema_is_versioned_and_a_newer_database_is_refused(pg_url: str) -> None:
    import psycopg

    from intercom_responder.adapters.pg_store import SCHEMA_VERSION, PostgresStateStore

    PostgresStateStore(pg_url).close()
    PostgresStateStore(pg_url).close()  # a second start migrates nothing
    with psycopg.connect(pg_url, autocommit=True) as connection:
        versions = [row[0] for row in connection.execute("SELECT version FROM responder_schema")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        connection.execute("INSERT INTO responder_schema VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StateFileError) as caught:
        PostgresStateStore(pg_url)
    assert "newer intercom-responder" in str(caught.value)
    assert "DATABASE_URL" in str(caught.value)


def test_a_wrong_password_names_database_url_without_the_password(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path, pg_url: str
) -> None:
    wrong = pg_url.replace("pw-secret-0123", "not-the-password-9876")
    env = daemon_env(intercom, model, tmp_path, STATE_BACKEND="postgres", DATABASE_URL=wrong)
    code, _, err = run_main(["--once"], env)
    assert code == 3
    assert "DATABASE_URL postgresql://responder@127.0.0.1:" in err
    assert "not-the-password-9876" not in err and "pw-secret" not in err


def test_the_database_down_at_start_is_a_clear_error(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    url = "postgresql://responder:pw@127.0.0.1:9/responder"  # nothing listens on port 9
    env = daemon_env(intercom, model, tmp_path, STATE_BACKEND="postgres", DATABASE_URL=url)
    code, _, err = run_main(["--once"], env)
    assert code == 3 and "cannot connect" in err and ":pw@" not in err
    code, _, err = run_main(
        ["--once"], daemon_env(intercom, model, tmp_path, STATE_BACKEND="postgres")
    )
    assert code == 2 and "DATABASE_URL" in err


def test_the_daemon_answers_once_on_postgres_across_a_restart(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, pg_url: str
) -> None:
    cid = waiting_customer(intercom)
    app = make_app(STATE_BACKEND="postgres", DATABASE_URL=pg_url)
    [outcome] = app.poller.poll_once().outcomes
    assert outcome.status == "replied"
    app.close()
    restarted = make_app(STATE_BACKEND="postgres", DATABASE_URL=pg_url)
    restarted.poller.poll_once()
    assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1
    record = restarted.store.get(cid)
    assert record is not None and record.state is State.AWAITING_USER_REPLY


def test_state_export_and_import_move_a_team_to_postgres(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, tmp_path: Path, pg_url: str
) -> None:
    cid = waiting_customer(intercom)
    make_app().poller.poll_once()  # answered on the file store
    file_env = daemon_env(intercom, model, tmp_path)
    pg_env = {**file_env, "STATE_BACKEND": "postgres", "DATABASE_URL": pg_url}
    exported = tmp_path / "state.json"

    code, _, err = run_main(["state", "export", "--out", str(exported)], file_env)
    assert code == 0, err
    code, out, err = run_main(["state", "import", str(exported)], pg_env)
    assert code == 0, err and "imported 1 conversation(s)" in out
    code, _, err = run_main(["state", "import", str(exported)], pg_env)
    assert code == 1 and "is not empty" in err  # no silent overwrite
    code, _, err = run_main(["state", "import", str(exported), "--replace"], pg_env)
    assert code == 0, err

    on_postgres = make_app(STATE_BACKEND="postgres", DATABASE_URL=pg_url)
    on_postgres.poller.poll_once()  # the switch answers nothing twice
    assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1
    code, printed, _ = run_main(["state", "export"], pg_env)
    assert json.loads(printed)["conversations"][cid]["state"] == "AWAITING_USER_REPLY"


def test_the_database_lost_while_running_sends_nothing_unrecorded_and_recovers(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, tmp_path: Path
) -> None:
    server = PostgresServer(tmp_path / "own-postgres")  # its own: this test kills it
    server.start()
    try:
        cid = waiting_customer(intercom)
        app = make_app(STATE_BACKEND="postgres", DATABASE_URL=server.url)

        def draft_then_lose_the_database(request: dict[str, object]) -> str:
            server.kill()  # while the model drafts: before the reply's intent is recorded
            return json.dumps({"answer": "Settings > Security.", "confidence": 0.95})

        model.reply = draft_then_lose_the_database
        result = app.poller.poll_once()

        assert not result.ok
        assert intercom.parts(cid, author_id=ADMIN_ID, part_type="comment") == []
        assert app.health is not None and app.health.status()[0] is False
        assert app.poller.next_interval(result) == 5.0  # looked at again soon...
        result = app.poller.poll_once()  # still down: a clear failure, not a crash
        assert not result.ok and "state store failed" in (result.error or "")
        assert app.poller.next_interval(result) == 10.0  # ...then less often

        server.start()  # back: the same daemon goes on by itself
        model.set_json_reply("Settings > Security.", 0.95)
        assert app.poller.poll_once().ok
        app.poller.poll_once()
        assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1
        assert app.health.status()[0] is True
    finally:
        server.close()


def test_a_dropped_database_connection_postpones_the_message_without_counting_an_attempt(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, pg_url: str
) -> None:
    import time

    import psycopg

    cid = waiting_customer(intercom)
    app = make_app(STATE_BACKEND="postgres", DATABASE_URL=pg_url, MEMORY_TOP_K="0")

    def draft_then_drop_the_connections(request: dict[str, object]) -> str:
        with psycopg.connect(pg_url, autocommit=True) as connection:  # as a restart does
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        return json.dumps({"answer": "Settings > Security.", "confidence": 0.95})

    model.reply = draft_then_drop_the_connections
    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status.value == "postponed"  # the intent could not be recorded: not sent
    assert intercom.parts(cid, author_id=ADMIN_ID, part_type="comment") == []
    record = app.store.get(cid)
    assert record is not None and record.state is State.WAITING and record.attempts == 0
    assert record.due_at is not None and record.due_at - time.time() < 6  # soon, not 30 s


# --------------------------------------------------------------------------- replicas


def handled_meanwhile(
    first: App, second: App, cid: str, model: FakeOpenAI
) -> tuple[CycleResult, Outcome]:
    """`first` polls in a thread; while it waits for the model, `second` takes `cid` up
    too: (first's poll, second's outcome)."""
    import threading
    import time

    results: list[CycleResult] = []
    polling = threading.Thread(target=lambda: results.append(first.poller.poll_once()))
    polling.start()
    deadline = time.monotonic() + 10
    while not model.chat_requests and time.monotonic() < deadline:
        time.sleep(0.01)
    meanwhile = second.pipeline.handle(cid)
    polling.join(30)
    return results[0], meanwhile


def test_two_replicas_on_one_database_answer_a_message_once(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, pg_url: str
) -> None:

    cid = waiting_customer(intercom)
    model.delay = 1.5  # the first replica is still drafting when the second looks
    replica = {"STATE_BACKEND": "postgres", "DATABASE_URL": pg_url, "MEMORY_TOP_K": "0"}
    first, second = make_app(**replica), make_app(**replica)
    polled, meanwhile = handled_meanwhile(first, second, cid, model)

    assert meanwhile.status.value == "skipped"
    assert meanwhile.reason == "another replica is handling it"
    [outcome] = polled.outcomes
    assert outcome.status.value == "replied"
    second.poller.poll_once()  # and later finds it answered
    assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1
    assert len(model.chat_requests) == 1  # the second replica did not draft too


def test_a_dead_replicas_claim_runs_out_and_another_one_answers(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, pg_url: str
) -> None:
    import time

    import psycopg

    cid = waiting_customer(intercom)
    with psycopg.connect(pg_url, autocommit=True) as connection:
        app = make_app(STATE_BACKEND="postgres", DATABASE_URL=pg_url, MEMORY_TOP_K="0")
        connection.execute(  # a replica that died while working on it, 1.5 s of lease left
            "INSERT INTO claims VALUES (%s, 'dead-replica', "
            "extract(epoch from clock_timestamp()) + 1.5)",
            (cid,),
        )
        [outcome] = app.poller.poll_once().outcomes
        assert outcome.status.value == "skipped"
        assert intercom.parts(cid, author_id=ADMIN_ID, part_type="comment") == []
        time.sleep(1.6)
        [outcome] = app.poller.poll_once().outcomes
        assert outcome.status.value == "replied"
        rows = connection.execute(
            "SELECT count(*) FROM claims WHERE conversation_id NOT LIKE '~%'"
        ).fetchone()
        assert rows is not None and rows[0] == 0  # released when done


def test_a_version_1_database_is_migrated_to_the_current_schema(pg_url: str) -> None:
    import psycopg

    from intercom_responder.adapters.pg_store import (
        MIGRATIONS,
        SCHEMA_VERSION,
        PostgresStateStore,
    )

    with psycopg.connect(pg_url, autocommit=True) as connection:  # as the first release left it
        connection.execute("CREATE TABLE responder_schema (version integer NOT NULL)")
        for statement in MIGRATIONS[0]:
            connection.execute(statement)
        connection.execute("INSERT INTO responder_schema VALUES (1)")
    PostgresStateStore(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as connection:
        versions = [r[0] for r in connection.execute("SELECT version FROM responder_schema")]
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        connection.execute("SELECT conversation_id, owner, expires_at FROM claims")


def test_replicas_share_one_poll_and_a_dead_leaders_lease_runs_out(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, pg_url: str
) -> None:
    import time

    import psycopg

    replica = {"STATE_BACKEND": "postgres", "DATABASE_URL": pg_url, "MEMORY_TOP_K": "0"}
    first, second = make_app(**replica), make_app(**replica)
    first.poller.poll_once()
    second.poller.poll_once()
    first.poller.poll_once()
    # one replica leads: three polls, two of them by the leader, cost two searches
    assert len(intercom.calls("POST", "/conversations/search")) == 2

    cid = waiting_customer(intercom)
    second.poller.poll_once()  # not the leader: it does not search, so it does not see it
    assert intercom.parts(cid, author_id=ADMIN_ID, part_type="comment") == []
    with psycopg.connect(pg_url, autocommit=True) as connection:  # the leader dies
        connection.execute(
            "UPDATE claims SET owner = 'dead-leader', "
            "expires_at = extract(epoch from clock_timestamp()) + 1 WHERE conversation_id = '~poll'"
        )
    second.poller.poll_once()
    assert intercom.parts(cid, author_id=ADMIN_ID, part_type="comment") == []
    time.sleep(1.1)  # its lease runs out: the second replica takes over the poll
    second.poller.poll_once()
    assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1


def test_a_second_replica_on_the_same_local_memory_is_refused_with_the_advice(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, pg_url: str
) -> None:
    from intercom_responder.adapters.files import StateLockedError

    replica = {"STATE_BACKEND": "postgres", "DATABASE_URL": pg_url}
    first = make_app(**replica)
    with pytest.raises(StateLockedError) as caught:
        make_app(**replica)
    assert "Mem0 platform (MEM0_API_KEY)" in str(caught.value)
    make_app(**replica, MEMORY_TOP_K="0").close()  # without a local memory: no conflict
    first.close()
    make_app(**replica).close()  # the folder is free again


def test_a_replica_killed_after_intercom_applied_the_reply_is_finished_by_another_once(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, tmp_path: Path, pg_url: str
) -> None:
    """The file store's most dangerous crash, with two replicas: replica A posts the reply,
    Intercom applies it, A dies by SIGKILL before it records that. Replica B must neither
    answer again while A's claim lasts, nor leave the message: once the claim runs out it
    finds the reply in the conversation and records it."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    from tests.conftest import REPO
    from tests.fakes.intercom import RecordedRequest

    cid = waiting_customer(intercom)
    replica = {
        "STATE_BACKEND": "postgres",
        "DATABASE_URL": pg_url,
        "MEMORY_TOP_K": "0",
        "LEASE_SECONDS": "2",
    }
    env = daemon_env(intercom, model, tmp_path, **replica)
    applied = threading.Event()

    def reply_applied(request: RecordedRequest) -> None:
        if request.path.endswith("/reply"):
            applied.set()

    intercom.on_applied = reply_applied
    intercom.apply_then_hang("POST", r"/reply$", 10.0)  # the answer never reaches replica A
    replica_a = subprocess.Popen(
        [sys.executable, str(REPO / "main.py"), "--once", "--env-file", os.devnull],
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert applied.wait(30), "replica A never sent the reply"
        replica_a.send_signal(signal.SIGKILL)
        replica_a.wait(10)
    finally:
        if replica_a.poll() is None:
            replica_a.kill()
    intercom.on_applied = None

    def replies() -> list[dict[str, object]]:
        return intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")

    assert len(replies()) == 1

    replica_b = make_app(**replica)
    record = replica_b.store.get(cid)
    assert record is not None and record.state is State.SENDING  # A died at the worst moment
    [outcome] = replica_b.poller.poll_once().outcomes  # A's claim still holds: hands off
    assert outcome.reason == "another replica is handling it" and len(replies()) == 1
    time.sleep(2.2)
    [outcome] = replica_b.poller.poll_once().outcomes
    assert outcome.status.value == "recovered"
    assert len(replies()) == 1 and len(intercom.calls("POST", f"/conversations/{cid}/reply")) == 1
    record = replica_b.store.get(cid)
    assert record is not None and record.state is State.AWAITING_USER_REPLY


def test_a_500_after_intercom_applied_the_reply_with_two_replicas_is_one_reply(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, pg_url: str
) -> None:

    cid = waiting_customer(intercom)
    intercom.apply_then_fail("POST", r"/reply$", 500)  # applied, but the answer is an error
    model.delay = 1.0
    replica = {"STATE_BACKEND": "postgres", "DATABASE_URL": pg_url, "MEMORY_TOP_K": "0"}
    first, second = make_app(**replica), make_app(**replica)
    polled, meanwhile = handled_meanwhile(first, second, cid, model)
    second.poller.poll_once()
    first.poller.poll_once()

    assert meanwhile.reason == "another replica is handling it"
    [outcome] = polled.outcomes
    assert outcome.status.value == "replied"  # it looked before trying again, and found it
    assert len(intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")) == 1
    assert len(intercom.calls("POST", f"/conversations/{cid}/reply")) == 1
