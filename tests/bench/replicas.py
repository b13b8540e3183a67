"""Benchmark: replicas on PostgreSQL (STATE_BACKEND=postgres).

    python -m tests.bench.replicas [--conversations 200] [--replicas 1,3] [--leases 30,10]

1. record: the time to record one answered message (its intent, then its result) in the
   file store and in PostgreSQL, both with fsync on, holding --size conversations.
2. drain: --conversations customers arrive at once; 1 and 3 replicas (`python main.py`
   processes on one database, CONCURRENCY 4 each, POLL_INTERVAL 1 s) answer them; the
   wall time from their arrival to the last answer, the Intercom calls, answers twice.
3. failover: two replicas; the one drafting an answer is killed with SIGKILL; the seconds
   until the other one has answered, by LEASE_SECONDS, with the daemon's default
   POLL_INTERVAL.

Starts its own PostgreSQL (Debian's `postgresql` package) in a temporary folder. The
fakes run in this process; the replicas are processes of their own. Not a test.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from intercom_responder.adapters.pg_store import PostgresStateStore
from intercom_responder.core.records import ConversationRecord, State
from tests.bench.harness import (
    Conversations,
    add_waiting,
    by_endpoint,
    conversation_of,
    fakes,
    int_list,
    print_header,
    replies_by_us,
    table,
)
from tests.bench.state_store import filled_store, record_samples
from tests.conftest import daemon_env
from tests.daemon_process import DaemonProcess
from tests.fakes.intercom import FakeIntercom
from tests.fakes.openai_server import FakeOpenAI
from tests.postgres import PostgresServer


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until `check()`; raises after `timeout`."""
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"benchmark stopped: {what} not within {timeout:.0f} s")
        time.sleep(0.02)
    return time.perf_counter() - started


# --------------------------------------------------------------------------- 1. record


def measure_records(server: PostgresServer, size: int, changes: int) -> list[list[object]]:
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        file_store = filled_store(Path(tmp), size)
        try:
            rows.append(["file (STATE_FILE)", *summary(record_samples(file_store, changes))])
        finally:
            file_store.close()
    url = server.new_database(server.unique_name("record"))
    with PostgresStateStore(url) as pg_store:
        backlog = {
            str(i): ConversationRecord(str(i), State.AWAITING_USER_REPLY) for i in range(size)
        }
        pg_store.restore(backlog, {}, {})
        rows.append(["PostgreSQL (DATABASE_URL)", *summary(record_samples(pg_store, changes))])
    return rows


def summary(samples: list[float]) -> list[object]:
    return [
        f"{statistics.median(samples):.2f} ms",
        f"{samples[int(len(samples) * 0.95) - 1]:.2f} ms",
        f"{samples[-1]:.1f} ms",
    ]


# --------------------------------------------------------------------------- 2. drain


def start_replicas(
    count: int, env: dict[str, str], folder: Path, *, label: str
) -> list[DaemonProcess]:
    replicas = [DaemonProcess(f"{label}-{n}", env, folder) for n in range(count)]
    try:
        wait_until(lambda: all(r.healthy() for r in replicas), 60, "the replicas starting")
    except SystemExit:
        for replica in replicas:
            replica.kill()
            print(f"--- {replica.name}:\n{replica.output()[-2000:]}")
        raise
    return replicas


def answered_by(replicas: list[DaemonProcess]) -> list[int]:
    return [len(re.findall(r"conversation \S+: replied\b", r.output())) for r in replicas]


def drain(
    server: PostgresServer, count: int, conversations: int, model_delay: float, folder: Path
) -> list[object]:
    url = server.new_database(server.unique_name(f"drain{count}"))
    with fakes(validate=False, model_delay=model_delay) as (intercom, model):
        env = replica_env(intercom, model, folder, url, POLL_INTERVAL="1", POLL_INTERVAL_MAX="1")
        replicas = start_replicas(count, env, folder, label=f"drain{count}")
        try:
            before = len(intercom.requests)
            add_waiting(Conversations(intercom), conversations, random.Random(7))
            wall = wait_until(
                lambda: len(replies_by_us(intercom.requests)) >= conversations,
                600,
                f"{conversations} answers by {count} replica(s)",
            )
            time.sleep(2)  # anything answered twice would be by now
            requests = intercom.requests[before:]
            twice = sum(
                1 for n in Counter(map(conversation_of, replies_by_us(requests))).values() if n > 1
            )
            calls = by_endpoint(requests)
            shares = answered_by(replicas)
        finally:
            for replica in replicas:
                replica.stop()
    return [
        count,
        f"{wall:.1f} s",
        f"{conversations / wall:.1f}",
        " / ".join(map(str, shares)),
        twice,
        calls["search"],
        calls["GET conversation"],
        sum(calls.values()),
    ]


def replica_env(
    intercom: FakeIntercom, model: FakeOpenAI, folder: Path, url: str, **overrides: str
) -> dict[str, str]:
    return daemon_env(
        intercom,
        model,
        folder,
        STATE_BACKEND="postgres",
        DATABASE_URL=url,
        MEMORY_TOP_K="0",
        LOG_LEVEL="INFO",
        CONCURRENCY="4",
        **overrides,
    )


# --------------------------------------------------------------------------- 3. failover


def failover(server: PostgresServer, lease: int, folder: Path) -> list[object]:
    import psycopg

    url = server.new_database(server.unique_name(f"failover{lease}"))
    with fakes(validate=False, model_delay=0.5) as (intercom, model):
        env = replica_env(intercom, model, folder, url, LEASE_SECONDS=str(lease))
        env.pop("POLL_INTERVAL_MIN")  # the daemon's defaults: POLL_INTERVAL 60 s, min 15 s
        replicas = start_replicas(2, env, folder, label=f"failover{lease}")
        try:
            model.delay = 30.0  # the replica that takes it is still drafting when killed
            [cid] = add_waiting(Conversations(intercom), 1, random.Random(1))
            with psycopg.connect(url, autocommit=True) as connection:

                def owner() -> str | None:
                    row = connection.execute(
                        "SELECT owner FROM claims WHERE conversation_id = %s", (cid,)
                    ).fetchone()
                    return str(row[0]) if row else None

                # the first poll's search may be a minute away: the leader found it when
                wait_until(lambda: bool(model.chat_requests), 120, "a replica drafting")
                holder = owner()
            assert holder is not None
            pid = int(holder.split(":")[1])
            [victim] = [r for r in replicas if r.pid == pid]
            model.delay = 0.5
            killed = time.perf_counter()
            victim.kill()
            wait_until(lambda: bool(replies_by_us(intercom.requests)), 600, "the other answering")
            seconds = time.perf_counter() - killed
            time.sleep(1)
            replies = len(replies_by_us(intercom.requests))
        finally:
            for replica in replicas:
                replica.stop()
    return [lease, f"{seconds:.1f} s", replies]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.replicas",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", type=int, default=10_000, help="conversations stored (10000)")
    parser.add_argument("--changes", type=int, default=300, help="answers recorded (300)")
    parser.add_argument("--conversations", type=int, default=200, help="the burst (200)")
    parser.add_argument("--replicas", type=int_list, default=[1, 3], metavar="N,N")
    parser.add_argument("--model-delay", type=float, default=0.5, metavar="SECONDS")
    parser.add_argument("--leases", type=int_list, default=[30, 10], metavar="S,S")
    args = parser.parse_args()

    print_header("Replicas on PostgreSQL")
    with (
        tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp,
        PostgresServer(Path(tmp) / "postgres", durable=True) as server,
    ):
        folder = Path(tmp)
        print(f"1. record one answered message (intent, then result), {args.size:,} stored,")
        print(f"   {args.changes} answers; both with fsync on")
        headers = ["store", "median", "p95", "max"]
        print(table(headers, measure_records(server, args.size, args.changes)))
        print()
        print(
            f"2. drain: {args.conversations} customers arrive at once; fake model "
            f"{args.model_delay:g} s per answer; CONCURRENCY 4 per replica, POLL_INTERVAL 1 s"
        )
        rows = []
        for count in args.replicas:
            rows.append(drain(server, count, args.conversations, args.model_delay, folder))
            print(f"   ... {count} replica(s): {rows[-1][1]}", flush=True)
        headers = ["replicas", "wall", "answers/s", "answered by each", "twice"]
        headers += ["searches", "GET conversation", "Intercom calls"]
        print(table(headers, rows))
        print()
        print("3. failover: the replica drafting an answer is killed (SIGKILL); time until")
        print("   the other one has answered (POLL_INTERVAL defaults, fake model 0.5 s)")
        rows = [failover(server, lease, folder) for lease in args.leases]
        print(table(["LEASE_SECONDS", "SIGKILL to answer", "replies"], rows))


if __name__ == "__main__":
    main()
