"""Several daemons on one PostgreSQL (STATE_BACKEND=postgres): one of them searches Intercom,
all of them answer, and each customer message is answered once, whatever dies.

The store's own behaviour and the two-replica crash tests are in `test_pg_store.py`;
Slack reviews with two replicas in `test_review_replicas.py`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from intercom_responder.adapters.pg_store import PostgresStateStore, shown_url
from intercom_responder.bootstrap import App
from intercom_responder.core.records import State
from tests.conftest import daemon_env, replies, waiting_customer
from tests.daemon_process import DaemonProcess
from tests.fakes.intercom import FakeIntercom
from tests.fakes.openai_server import FakeOpenAI
from tests.postgres import PostgresServer

pytestmark = pytest.mark.openai_only

MakeApp = Callable[..., App]


def replica_env(pg_url: str, **overrides: str) -> dict[str, str]:
    return {"STATE_BACKEND": "postgres", "DATABASE_URL": pg_url, "MEMORY_TOP_K": "0", **overrides}


def listed(pg_url: str) -> list[str]:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as connection:
        return [row[0] for row in connection.execute("SELECT conversation_id FROM found")]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def test_a_burst_the_polling_replica_found_is_shared_with_the_others(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, pg_url: str
) -> None:
    conversations = [waiting_customer(intercom, f"<p>Question {n}?</p>") for n in range(8)]
    model.delay = 0.4
    leader, other = make_app(**replica_env(pg_url)), make_app(**replica_env(pg_url))
    results = []
    polling = threading.Thread(target=lambda: results.append(leader.poller.poll_once()))
    polling.start()
    wait_for(lambda: bool(model.chat_requests), 10, "the leader never drafted")
    helped = other.poller.poll_once()  # not the leader: it takes up what the leader listed
    polling.join(30)

    answered_by_other = [o.conversation_id for o in helped.outcomes if o.status == "replied"]
    answered_by_leader = [o.conversation_id for o in results[0].outcomes if o.status == "replied"]
    assert answered_by_other and answered_by_leader  # both worked
    assert sorted(answered_by_other + answered_by_leader) == sorted(conversations)
    assert all(len(replies(intercom, cid)) == 1 for cid in conversations)
    assert len(model.chat_requests) == 8  # nobody drafted a conversation twice
    assert len(intercom.calls("POST", "/conversations/search")) == 1  # one searched
    assert listed(pg_url) == []  # all handled, the list is empty


def test_what_a_dead_leader_listed_is_answered_by_another_replica(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, pg_url: str
) -> None:
    import psycopg

    conversations = [waiting_customer(intercom, f"<p>Question {n}?</p>") for n in range(2)]
    replica = make_app(**replica_env(pg_url))
    with psycopg.connect(pg_url, autocommit=True) as connection:  # it searched, listed, died
        connection.execute(
            "INSERT INTO claims VALUES ('~poll', 'dead-leader', "
            "extract(epoch from clock_timestamp()) + 60)"
        )
        for cid in conversations:
            connection.execute("INSERT INTO found VALUES (%s, 1)", (cid,))

    result = replica.poller.poll_once()

    assert intercom.calls("POST", "/conversations/search") == []  # it does not lead
    assert sorted(o.conversation_id for o in result.outcomes) == sorted(conversations)
    assert all(len(replies(intercom, cid)) == 1 for cid in conversations)
    assert listed(pg_url) == []


def test_the_poll_lease_is_renewed_while_the_leader_lives_and_handed_on_when_it_stops(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, pg_url: str
) -> None:
    import psycopg

    env = replica_env(pg_url, LEASE_SECONDS="1", POLL_INTERVAL_MAX="300")
    leader, other = make_app(**env), make_app(**env)
    assert leader.poller.poll_once().leading
    leader.poller.interval = 300.0  # a quiet night: the leader polls every five minutes
    with psycopg.connect(pg_url, autocommit=True) as connection:
        [(left,)] = connection.execute(
            "SELECT expires_at - extract(epoch from clock_timestamp()) FROM claims "
            "WHERE conversation_id = '~poll'"
        ).fetchall()
    assert 0 < left <= 1.0  # LEASE_SECONDS, however long the interval: a dead one is noticed
    time.sleep(1.5)  # longer than the lease: the living leader's renewals keep it
    following = other.poller.poll_once()
    assert not following.leading and len(intercom.calls("POST", "/conversations/search")) == 1
    assert other.poller.next_interval(following) == 1.0  # POLL_INTERVAL_MIN, as it costs nothing
    assert leader.health is not None and other.health is not None  # /health says who leads
    assert leader.health.status()[1]["replica"] == "leader"
    assert other.health.status()[1]["replica"] == "follower"

    leader.close()  # a clean stop hands the lease on at once
    assert other.poller.poll_once().leading
    assert len(intercom.calls("POST", "/conversations/search")) == 2


# --------------------------------------------------------------------------- under load


def test_three_replicas_under_load_survive_a_database_restart_and_a_sigkill(
    intercom: FakeIntercom, model: FakeOpenAI, tmp_path: Path
) -> None:
    """A burst of 30 customers, three replicas; the database restarts while they answer,
    then one replica is killed with SIGKILL. Every customer gets exactly one reply, the
    two left report healthy again by themselves, and stop cleanly."""
    server = PostgresServer(tmp_path / "own-postgres")  # its own: this test restarts it
    server.start()
    replicas: list[DaemonProcess] = []
    try:
        conversations = [waiting_customer(intercom, f"<p>Question {n}?</p>") for n in range(30)]
        model.delay = 0.3
        env = daemon_env(
            intercom,
            model,
            tmp_path,
            **replica_env(server.url),
            LEASE_SECONDS="2",
            POLL_INTERVAL="1",
            POLL_INTERVAL_MAX="1",
            CONCURRENCY="2",
            LOG_LEVEL="INFO",
        )
        replicas = [DaemonProcess(name, env, tmp_path) for name in ("a", "b", "c")]

        def answered() -> int:
            return sum(1 for cid in conversations if replies(intercom, cid))

        wait_for(lambda: answered() >= 6, 60, "the replicas never got going")
        server.stop()  # under load: connections are gone, statements fail meanwhile
        time.sleep(1.5)
        server.start()
        wait_for(lambda: answered() >= 15, 60, "no answers after the database restart")
        replicas[0].kill()  # SIGKILL, whatever it was doing
        wait_for(lambda: answered() == 30, 90, "not every customer was answered")
        time.sleep(3)  # longer than a lease: anything left over would be answered again now

        twice = {cid: n for cid in conversations if (n := len(replies(intercom, cid))) != 1}
        assert twice == {}, f"answered other than once: {twice}"
        survivors = replicas[1:]
        wait_for(lambda: all(r.healthy() for r in survivors), 30, "not healthy again")
        for replica in survivors:
            assert replica.process.poll() is None, replica.output()[-3000:]
        # the restart did hit them at work (an idle replica may just reconnect unnoticed)
        assert any(f"DATABASE_URL {shown_url(server.url)}" in r.output() for r in replicas)
        assert listed(server.url) == []

        with PostgresStateStore(server.url) as store:
            states = {cid: getattr(store.get(cid), "state", None) for cid in conversations}
        assert set(states.values()) == {State.AWAITING_USER_REPLY}, states
        for replica in survivors:
            assert replica.stop() == 0, replica.output()[-3000:]
    finally:
        for replica in replicas:
            replica.kill()
        server.close()
