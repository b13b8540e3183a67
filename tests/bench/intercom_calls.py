"""Benchmark: Intercom calls per answered message, and the cost of an idle poll.

    python -m tests.bench.intercom_calls [--idle 1000] [--waiting 200] [--concurrency 8]

A fake Intercom holds IDLE open conversations where a teammate answered last (nobody
waits on the daemon) and WAITING ones with a customer message old enough to pass the
debounce (half new conversations, half customers writing again after a teammate). The
real daemon, built as `main.py` builds it, runs one `poll_once()` that answers them all
(the fake model is confident), then idle cycles with nothing new.

Targets (issue 7): at most 4.5 Intercom calls per answered message, everything included;
an idle cycle at most 2 calls whatever the number of open conversations. Calls are
counted twice: by the daemon's client (`CycleResult.intercom_calls`) and by the fake
(its request log, by endpoint). Prints a table; not a test.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from intercom_responder.bootstrap import App
from intercom_responder.defaults import OVERLAP_SECONDS
from intercom_responder.flow.poller import CycleResult
from tests.bench.harness import (
    ENDPOINTS,
    Conversations,
    add_fake_arguments,
    add_idle,
    add_waiting,
    by_endpoint,
    daemon,
    fakes,
    print_header,
    replies_by_us,
    table,
    verdict,
)
from tests.fakes.intercom import FakeIntercom, RecordedRequest

CALLS_PER_ANSWER_TARGET = 4.5
IDLE_CYCLE_TARGET = 2
DEBOUNCE_SECONDS = 15


@dataclass
class Cycle:
    name: str
    result: CycleResult
    requests: list[RecordedRequest]
    next_interval: float  # the adaptive poll interval after it

    @property
    def answered(self) -> int:
        return len(replies_by_us(self.requests))


def run_cycle(name: str, app: App, intercom: FakeIntercom) -> Cycle:
    before = len(intercom.requests)
    result = app.poller.poll_once()
    if not result.ok:
        raise SystemExit(f"the {name} cycle failed: {result.error}")
    # as run_forever() does after each cycle: the adaptive interval follows the result
    app.poller.interval = app.poller.next_interval(result)
    return Cycle(name, result, intercom.requests[before:], app.poller.interval)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.intercom_calls",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Memory (Mem0) is off (MEMORY_TOP_K=0); it makes no Intercom calls anyway.",
    )
    parser.add_argument(
        "--idle", type=int, default=1000, help="open conversations a teammate answered last (1000)"
    )
    parser.add_argument(
        "--waiting", type=int, default=200, help="conversations with a new customer message (200)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="CONCURRENCY (default 8)")
    parser.add_argument(
        "--idle-cycles", type=int, default=2, help="idle cycles right after (default 2)"
    )
    parser.add_argument(
        "--later",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="then wait this long and run one more idle cycle (e.g. 65, past the "
        f"{OVERLAP_SECONDS} s search overlap; default: skip)",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the inbox (7)")
    add_fake_arguments(parser, validate=True)
    args = parser.parse_args()

    print_header("Intercom calls per answered message")
    with (
        fakes(validate=args.validate, rate_limit=args.rate_limit, rate_window=args.rate_window) as (
            intercom,
            model,
        ),
        tempfile.TemporaryDirectory(prefix="bench-calls-") as state_dir,
    ):
        rng = random.Random(args.seed)
        conversations = Conversations(intercom)
        add_idle(conversations, args.idle, rng)
        add_waiting(conversations, args.waiting, rng)
        overrides = {
            "CONCURRENCY": str(args.concurrency),
            "MEMORY_TOP_K": "0",
            "DEBOUNCE_SECONDS": str(DEBOUNCE_SECONDS),
            "POLL_INTERVAL": "60",
            "POLL_INTERVAL_MIN": "15",
        }
        with daemon(intercom, model, Path(state_dir), log_level=args.log_level, **overrides) as app:
            cycles = [run_cycle("first", app, intercom)]
            for n in range(1, args.idle_cycles + 1):
                cycles.append(run_cycle(f"idle {n}", app, intercom))
            if args.later > 0:
                time.sleep(args.later)
                cycles.append(run_cycle(f"idle, {args.later:g} s later", app, intercom))
        rate_limited = sum(1 for r in intercom.requests if r.status == 429)
        invalid = list(intercom.validation_errors)
        chats = len(model.chat_calls)

    print(
        f"inbox: {args.idle + args.waiting:,} open conversations: {args.idle:,} a teammate "
        f"answered last, {args.waiting:,} with a customer message 60-300 s old"
    )
    print(
        f"daemon: CONCURRENCY={args.concurrency}, DEBOUNCE_SECONDS={DEBOUNCE_SECONDS}, "
        "MEMORY_TOP_K=0 (memory off), model confident (0.93)"
    )
    print(
        f"fake Intercom: OpenAPI validation {'on' if args.validate else 'off'}, rate limit "
        f"{args.rate_limit:,} per {args.rate_window:g} s"
    )
    print()
    print(cycle_table(cycles))
    print()
    print("found = search results (after de-duplication); read = conversations handed to the")
    print("pipeline; total = requests the fake received; client = CycleResult.intercom_calls;")
    print("next interval = the adaptive interval after the cycle, updated as run_forever()")
    print("does (POLL_INTERVAL 60, POLL_INTERVAL_MIN 15, POLL_INTERVAL_MAX 300).")
    print(
        f"Also: {chats} model calls, {rate_limited} answers 429, "
        f"{len(invalid)} requests the fake refused as invalid."
    )
    for problem in invalid[:5]:
        print(f"  invalid: {problem}")
    print()
    print(target_table(cycles, args.waiting))
    if cycles[0].answered != args.waiting:
        print(f"note: only {cycles[0].answered} of {args.waiting} waiting messages were answered")


def cycle_table(cycles: list[Cycle]) -> str:
    headers = ["cycle", "wall s", "found", "read", *ENDPOINTS, "total", "client", "answered"]
    headers += ["calls/answer", "next interval"]
    rows = []
    for cycle in cycles:
        counts = by_endpoint(cycle.requests)
        per_answer = f"{len(cycle.requests) / cycle.answered:.2f}" if cycle.answered else "-"
        rows.append(
            [
                cycle.name,
                cycle.result.seconds,
                cycle.result.found,
                cycle.result.read,
                *(counts[e] for e in ENDPOINTS),
                len(cycle.requests),
                cycle.result.intercom_calls,
                cycle.answered,
                per_answer,
                f"{cycle.next_interval:g} s",
            ]
        )
    return table(headers, rows)


def target_table(cycles: list[Cycle], waiting: int) -> str:
    first = cycles[0]
    per_answer = len(first.requests) / first.answered if first.answered else float("inf")
    rows = [
        [
            "calls per answered message (first cycle)",
            f"{per_answer:.2f}",
            f"<= {CALLS_PER_ANSWER_TARGET:g}",
            verdict(per_answer <= CALLS_PER_ANSWER_TARGET and first.answered == waiting),
        ]
    ]
    if len(cycles) > 1:
        worst_idle = max(len(c.requests) for c in cycles[1:])
        rows.append(
            [
                "calls of an idle cycle (worst of the idle rows)",
                str(worst_idle),
                f"<= {IDLE_CYCLE_TARGET}",
                verdict(worst_idle <= IDLE_CYCLE_TARGET),
            ]
        )
    return table(["target", "value", "limit", "result"], rows)


if __name__ == "__main__":
    main()
