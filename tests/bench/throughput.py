"""Benchmark: wall time of one poll that answers a backlog, by CONCURRENCY.

    python -m tests.bench.throughput [--conversations 200] [--concurrency 1,4,8,16]

For each CONCURRENCY: a fresh fake Intercom holding CONVERSATIONS customers waiting past
the debounce, a fake model that answers confidently after MODEL_DELAY seconds, a fresh
state directory, and the real daemon built as `main.py` builds it; one `poll_once()`
answers them all, and its wall time is measured. The fake Intercom enforces a realistic
rate limit (1,666 calls per 10 s: Intercom's 10,000 a minute in 10 s windows); a last,
tight run with a small limit shows whether the client slows down by itself (waits) or
runs into 429 answers.

Target (issue 7): under 20 s at CONCURRENCY 8. Prints a table; not a test.
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.bench.harness import (
    Conversations,
    add_fake_arguments,
    add_waiting,
    conversation_of,
    daemon,
    fakes,
    int_list,
    print_header,
    replies_by_us,
    table,
    verdict,
)

TARGET_SECONDS = 20.0
TARGET_CONCURRENCY = 8


@dataclass(frozen=True)
class Run:
    label: str
    concurrency: int
    rate_limit: int
    rate_window: float
    wall: float
    answered: int
    duplicates: int  # conversations answered more than once (must be 0)
    calls: int
    rate_limited: int  # answers 429 from the fake
    waits: int  # the client's rate-limit waits (before a call, or after a 429)
    waited: float
    peak_model: int  # most model requests in flight at once
    ideal: float  # ceil(conversations / concurrency) * model delay

    @property
    def per_second(self) -> float:
        return self.answered / self.wall if self.wall else 0.0


def run(
    label: str,
    args: argparse.Namespace,
    concurrency: int,
    rate_limit: int,
    rate_window: float,
) -> Run:
    with (
        fakes(
            validate=args.validate,
            rate_limit=rate_limit,
            rate_window=rate_window,
            model_delay=args.model_delay,
        ) as (intercom, model),
        tempfile.TemporaryDirectory(prefix="bench-throughput-") as state_dir,
    ):
        add_waiting(Conversations(intercom), args.conversations, random.Random(args.seed))
        overrides = {"CONCURRENCY": str(concurrency), "MEMORY_TOP_K": "0"}
        with daemon(intercom, model, Path(state_dir), log_level=args.log_level, **overrides) as app:
            started = time.perf_counter()
            result = app.poller.poll_once()
            wall = time.perf_counter() - started
            waits = app.intercom.rate_limiter.waits
            assert app.metrics is not None
            waited = app.metrics.value("intercom_responder_intercom_rate_limit_wait_seconds_total")
        if not result.ok:
            print(f"  ({label}, CONCURRENCY {concurrency}: the cycle failed: {result.error})")
        replies = Counter(conversation_of(r) for r in replies_by_us(intercom.requests))
        return Run(
            label=label,
            concurrency=concurrency,
            rate_limit=rate_limit,
            rate_window=rate_window,
            wall=wall,
            answered=len(replies),
            duplicates=sum(1 for n in replies.values() if n > 1),
            calls=len(intercom.requests),
            rate_limited=sum(1 for r in intercom.requests if r.status == 429),
            waits=waits,
            waited=waited,
            peak_model=model.peak_in_flight(),
            ideal=math.ceil(args.conversations / concurrency) * args.model_delay,
        )


def rate(raw: str) -> tuple[int, float] | None:
    if raw.lower() == "none":
        return None
    limit, sep, window = raw.partition("/")
    try:
        parsed = int(limit), float(window)
    except ValueError:
        parsed = (0, 0.0)
    if not sep or parsed[0] < 1 or parsed[1] <= 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not LIMIT/SECONDS like 100/2, or none")
    return parsed


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Memory (Mem0) is off (MEMORY_TOP_K=0). The fakes run in this process: "
        "their CPU time counts against the daemon.",
    )
    parser.add_argument(
        "--conversations", type=int, default=200, help="customers waiting (default 200)"
    )
    parser.add_argument(
        "--concurrency",
        type=int_list,
        default=[1, 4, 8, 16],
        metavar="N,N,...",
        help="CONCURRENCY values to run (default 1,4,8,16)",
    )
    parser.add_argument(
        "--model-delay",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="the fake model's time per answer (default 0.5)",
    )
    parser.add_argument(
        "--tight",
        type=rate,
        default=(100, 2.0),
        metavar="LIMIT/SECONDS",
        help="rate limit of the last, tight run (default 100/2; none to skip)",
    )
    parser.add_argument(
        "--tight-concurrency",
        type=int,
        default=TARGET_CONCURRENCY,
        help=f"CONCURRENCY of the tight run (default {TARGET_CONCURRENCY})",
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed of the inbox (7)")
    add_fake_arguments(parser, validate=False)
    args = parser.parse_args()

    print_header("Throughput: one poll answering a backlog")
    print(
        f"{args.conversations} customers waiting, fake model {args.model_delay:g} s per answer "
        "(confident), MEMORY_TOP_K=0 (memory off)"
    )
    print(
        f"fake Intercom: OpenAPI validation {'on' if args.validate else 'off'} "
        "(on costs ~3-6 ms of CPU per request in this process, so off by default)"
    )
    print()
    runs: list[Run] = []
    for concurrency in args.concurrency:
        runs.append(run("realistic", args, concurrency, args.rate_limit, args.rate_window))
        print(f"  ... CONCURRENCY {concurrency}: {runs[-1].wall:.1f} s", flush=True)
    if args.tight is not None:
        limit, window = args.tight
        runs.append(run("tight", args, args.tight_concurrency, limit, window))
        print(f"  ... tight, CONCURRENCY {args.tight_concurrency}: {runs[-1].wall:.1f} s")
    print()
    headers = ["run", "rate limit", "CONCURRENCY", "wall s", "ideal s", "answered"]
    headers += ["answers/s", "model peak", "calls", "429s", "client waits", "waited s"]
    rows = [
        [
            r.label,
            f"{r.rate_limit:,}/{r.rate_window:g} s",
            r.concurrency,
            r.wall,
            r.ideal,
            f"{r.answered}" + (f" ({r.duplicates} twice!)" if r.duplicates else ""),
            r.per_second,
            r.peak_model,
            r.calls,
            r.rate_limited,
            r.waits,
            r.waited,
        ]
        for r in runs
    ]
    print(table(headers, rows))
    print()
    print("ideal = ceil(conversations / CONCURRENCY) x model delay: the model time alone.")
    print("model peak = most model requests in flight at once (the fake's own log).")
    print("calls = requests the fake Intercom received; 429s = those it answered 429;")
    print("client waits = RateLimiter.waits (slowing down before a call, plus one per 429);")
    print("waited s = the intercom_rate_limit_wait_seconds metric, summed over the threads.")
    print()

    target_rows = []
    at_target = [r for r in runs if r.label == "realistic" and r.concurrency == TARGET_CONCURRENCY]
    if at_target:
        r = at_target[0]
        ok = r.wall < TARGET_SECONDS and r.answered == args.conversations
        target_rows.append(
            [
                f"wall time at CONCURRENCY {TARGET_CONCURRENCY}",
                f"{r.wall:.1f} s",
                f"< {TARGET_SECONDS:g} s",
                verdict(ok),
            ]
        )
    for r in runs:
        target_rows.append(
            [
                f"no 429 ({r.label}, {r.rate_limit:,}/{r.rate_window:g} s, "
                f"CONCURRENCY {r.concurrency})",
                str(r.rate_limited),
                "0",
                verdict(r.rate_limited == 0),
            ]
        )
    print(table(["target", "value", "limit", "result"], target_rows))
    unanswered = [r for r in runs if r.answered != args.conversations or r.duplicates]
    for r in unanswered:
        print(
            f"note: {r.label} CONCURRENCY {r.concurrency}: {r.answered} of "
            f"{args.conversations} answered, {r.duplicates} answered twice"
        )


if __name__ == "__main__":
    main()
