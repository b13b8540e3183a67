"""Benchmark: time to record one answered message, by the size of the state.

    python -m tests.bench.state_store [--sizes 1000,10000,100000] [--changes 500]

Target (issue 7): under 20 ms at 10,000 conversations. Prints a table; not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from intercom_responder.adapters.store import StateStore, Store
from intercom_responder.core.records import ConversationRecord, PostKind, State

TARGET_MS = 20.0


def filled_store(directory: Path, size: int) -> StateStore:
    """A store holding `size` finished conversations, as after a busy day."""
    store = StateStore(directory / "sessions.json")
    for i in range(size):
        store._data.conversations[str(i)] = ConversationRecord(
            str(i),
            State.AWAITING_USER_REPLY,
            customer_part_id=str(10 * i),
            reply_part_id=str(10 * i + 1),
            seen_updated_at=1_763_773_150,
            seen_at=1_763_773_151.2,
            ai_replies=(1_763_773_151.0,),
            reason="confidence 0.91 is at or above the threshold 0.80",
            created_at=1_763_773_140.0,
            updated_at=1_763_773_151.0,
        )
    store._compact()
    return store


def record_samples(store: Store, changes: int) -> list[float]:
    """Milliseconds to record each of `changes` answered messages: the intent, then the
    result (what answering one message records), sorted."""
    samples = []
    for i in range(changes):
        cid = f"new-{i}"
        started = time.perf_counter()
        store.put(
            ConversationRecord(cid, State.SENDING, customer_part_id="1", action=PostKind.REPLY)
        )
        store.put(ConversationRecord(cid, State.AWAITING_USER_REPLY, reply_part_id="2"))
        samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples)


def measure(size: int, changes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = filled_store(Path(tmp), size)
        samples = record_samples(store, changes)
        started = time.perf_counter()
        store.close()
        close_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        StateStore(Path(tmp) / "sessions.json").close()
        open_ms = (time.perf_counter() - started) * 1000
        size_kib = (Path(tmp) / "sessions.json").stat().st_size / 1024
    samples.sort()
    return {
        "median": statistics.median(samples),
        "p95": samples[int(len(samples) * 0.95) - 1],
        "max": samples[-1],
        "close": close_ms,
        "open": open_ms,
        "kib": size_kib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--changes", type=int, default=500)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {sys.platform}")
    print(f"date:    {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"command: python -m tests.bench.state_store --sizes {args.sizes} --changes {args.changes}"
    )
    print()
    print(
        f"{'conversations':>13}  {'record (median)':>15}  {'p95':>8}  {'max':>8}  "
        f"{'stop':>8}  {'start':>8}  {'file':>9}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        r = measure(size, args.changes)
        print(
            f"{size:>13,}  {r['median']:>12.2f} ms  {r['p95']:>5.2f} ms  {r['max']:>5.1f} ms  "
            f"{r['close']:>5.0f} ms  {r['open']:>5.0f} ms  {r['kib']:>6.0f} KiB"
        )
        if size == 10_000:
            verdict = "met" if r["median"] < TARGET_MS else "MISSED"
            print(f"{'':>13}  target < {TARGET_MS:g} ms at 10,000: {verdict}")
    print()
    print("record = the two fsynced writes of one answered message (intent, then result);")
    print("max includes the occasional compaction of the journal into the snapshot.")


if __name__ == "__main__":
    main()
