"""Benchmark: latency the daemon adds between "answerable" and its reply reaching Intercom.

    python -m tests.bench.latency [--messages 40] [--window 30] [--poll-interval 1]

The real daemon, built as `main.py` builds it, runs its loop (`Poller.run_forever()`)
in a thread against a fake Intercom holding IDLE open conversations a teammate answered
last. Once its first poll is done, MESSAGES customers write again, one each, at random
moments over WINDOW seconds. A message becomes answerable when it is DEBOUNCE seconds
old by Intercom's clock (`created_at`, whole seconds); the fake model answers after
MODEL_DELAY seconds, confidently.

For each message, from the fakes' own timestamps (`RecordedRequest.at`, the model's
request log) and the start of each poll (recorded around `poll_once`):

    latency added  = reply request arrives - (created_at + debounce) - model time
    wait for poll  = start of the poll that answered it - (created_at + debounce)
    processing     = reply request arrives - start of that poll - model time

Model time is measured per conversation by the fake model (arrival to answer), so the
client's own overhead counts as the daemon's. No target; prints a table; not a test.
"""

from __future__ import annotations

import argparse
import itertools
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from intercom_responder.flow.poller import CycleResult, Poller
from tests.bench.harness import (
    ENDPOINTS,
    ChatCall,
    Conversations,
    add_fake_arguments,
    add_idle,
    by_endpoint,
    conversation_of,
    daemon,
    fakes,
    percentile,
    print_header,
    replies_by_us,
    table,
)
from tests.fakes.intercom import FakeIntercom, RecordedRequest


@dataclass(frozen=True)
class Poll:
    started: float  # time.time() when poll_once was called
    finished: float
    interval: float  # the adaptive interval that scheduled this poll
    result: CycleResult


@dataclass(frozen=True)
class Message:
    conversation_id: str
    sent: float  # time.time() when the customer wrote
    created_at: int  # the message's created_at in Intercom (whole seconds)


@dataclass(frozen=True)
class Answer:
    message: Message
    answerable: float
    reply_at: float
    poll: Poll
    model: float

    @property
    def added(self) -> float:
        return self.reply_at - self.answerable - self.model

    @property
    def wait_for_poll(self) -> float:
        return self.poll.started - self.answerable

    @property
    def processing(self) -> float:
        return self.reply_at - self.poll.started - self.model

    @property
    def visible(self) -> float:
        return self.reply_at - self.message.sent


def record_polls(poller: Poller) -> list[Poll]:
    """Wrap this poller's `poll_once` (run_forever calls it) to note when each poll ran."""
    polls: list[Poll] = []
    original: Callable[[], CycleResult] = poller.poll_once

    def timed() -> CycleResult:
        interval = poller.interval
        started = time.time()
        result = original()
        polls.append(Poll(started, time.time(), interval, result))
        return result

    poller.poll_once = timed  # type: ignore[method-assign]
    return polls


def inject(
    intercom: FakeIntercom, targets: Sequence[str], window: float, rng: random.Random
) -> list[Message]:
    """Each target conversation's customer writes once, at random moments over `window`."""
    offsets = sorted(rng.uniform(0, window) for _ in targets)
    start = time.time()
    messages = []
    for conversation_id, offset in zip(targets, offsets, strict=True):
        time.sleep(max(0.0, start + offset - time.time()))
        sent = time.time()
        part_id = intercom.customer_writes(
            conversation_id, "<p>Hello again: how do I change my email address?</p>"
        )
        [part] = [p for p in intercom.parts(conversation_id) if p["id"] == part_id]
        messages.append(Message(conversation_id, sent, int(part["created_at"])))
    return messages


def wait_for_replies(
    intercom: FakeIntercom, messages: Sequence[Message], timeout: float
) -> dict[str, RecordedRequest]:
    """The first reply by the bot to each message, waiting up to `timeout` seconds."""
    deadline = time.time() + timeout
    sent = {m.conversation_id: m.sent for m in messages}
    replies: dict[str, RecordedRequest] = {}
    while time.time() < deadline:
        for request in replies_by_us(intercom.calls("POST", "/conversations/")):
            cid = conversation_of(request)
            if cid in sent and cid not in replies and request.at >= sent[cid]:
                replies[cid] = request
        if len(replies) == len(messages):
            break
        time.sleep(0.2)
    return replies


def model_seconds(
    calls: Sequence[ChatCall], conversation_id: str, start: float, end: float
) -> float:
    return sum(
        c.seconds
        for c in calls
        if c.conversation_id == conversation_id and c.started >= start and c.finished <= end
    )


def answers(
    messages: Sequence[Message],
    replies: dict[str, RecordedRequest],
    polls: Sequence[Poll],
    calls: Sequence[ChatCall],
    debounce: float,
) -> list[Answer]:
    found = []
    for message in messages:
        reply = replies.get(message.conversation_id)
        if reply is None:
            continue
        poll = max(
            (p for p in polls if p.started <= reply.at), key=lambda p: p.started, default=None
        )
        if poll is None:  # cannot happen while polls are recorded; skip rather than guess
            continue
        model = model_seconds(calls, message.conversation_id, poll.started, reply.at)
        found.append(Answer(message, message.created_at + debounce, reply.at, poll, model))
    return found


def stats_row(label: str, values: Sequence[float]) -> list[str]:
    marks = (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 1.0))
    return [label, *(f"{v:.3f}" for v in marks)]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Memory (Mem0) is off (MEMORY_TOP_K=0). The fakes run in this process: "
        "their CPU time counts against the daemon.",
    )
    parser.add_argument("--messages", type=int, default=40, help="customer messages (40)")
    parser.add_argument(
        "--window", type=float, default=30.0, metavar="SECONDS", help="spread over (30 s)"
    )
    parser.add_argument(
        "--idle", type=int, default=1000, help="open conversations in the inbox (1000)"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="POLL_INTERVAL and POLL_INTERVAL_MIN (default 1)",
    )
    parser.add_argument(
        "--poll-interval-max",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="POLL_INTERVAL_MAX (default 2)",
    )
    parser.add_argument(
        "--debounce", type=float, default=2.0, metavar="SECONDS", help="DEBOUNCE_SECONDS (2)"
    )
    parser.add_argument(
        "--model-delay",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="the fake model's time per answer (0.5)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="CONCURRENCY (default 8)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (7)")
    add_fake_arguments(parser, validate=False)
    args = parser.parse_args()
    if args.poll_interval_max < args.poll_interval:
        parser.error("--poll-interval-max must not be below --poll-interval")

    print_header("Latency added by the daemon")
    rng = random.Random(args.seed)
    with (
        fakes(
            validate=args.validate,
            rate_limit=args.rate_limit,
            rate_window=args.rate_window,
            model_delay=args.model_delay,
        ) as (intercom, model),
        tempfile.TemporaryDirectory(prefix="bench-latency-") as state_dir,
    ):
        inbox = max(args.idle, args.messages)
        targets = rng.sample(add_idle(Conversations(intercom), inbox, rng), args.messages)
        overrides = {
            "CONCURRENCY": str(args.concurrency),
            "MEMORY_TOP_K": "0",
            "DEBOUNCE_SECONDS": f"{args.debounce:g}",
            "POLL_INTERVAL": f"{args.poll_interval:g}",
            "POLL_INTERVAL_MIN": f"{args.poll_interval:g}",
            "POLL_INTERVAL_MAX": f"{args.poll_interval_max:g}",
        }
        with daemon(intercom, model, Path(state_dir), log_level=args.log_level, **overrides) as app:
            polls = record_polls(app.poller)
            loop = threading.Thread(target=app.poller.run_forever, name="poll-loop", daemon=True)
            loop.start()
            deadline = time.time() + 120
            while not polls and time.time() < deadline:  # the first poll reads the whole day
                time.sleep(0.05)
            first_poll = polls[0] if polls else None
            window_start = time.time()
            messages = inject(intercom, targets, args.window, rng)
            replies = wait_for_replies(intercom, messages, timeout=args.debounce + 60)
            app.stopping.set()
            loop.join(timeout=60)
        calls = list(model.chat_calls)
        invalid = list(intercom.validation_errors)
        rate_limited = sum(1 for r in intercom.requests if r.status == 429)
        window_calls = by_endpoint(r for r in intercom.requests if r.at >= window_start)

    done = answers(messages, replies, polls, calls, args.debounce)
    during = [p for p in polls if p.started >= window_start]
    periods = [b.started - a.started for a, b in itertools.pairwise(during)]
    durations = [p.finished - p.started for p in during]
    intervals = Counter(f"{p.interval:g} s" for p in during)

    print(
        f"inbox: {inbox:,} open conversations a teammate answered last; {args.messages} of "
        f"their customers write again at random over {args.window:g} s"
    )
    print(
        f"daemon: run_forever(), POLL_INTERVAL={args.poll_interval:g} "
        f"(min {args.poll_interval:g}, max {args.poll_interval_max:g}), "
        f"DEBOUNCE_SECONDS={args.debounce:g}, CONCURRENCY={args.concurrency}, MEMORY_TOP_K=0"
    )
    print(
        f"fakes: model {args.model_delay:g} s per answer; Intercom validation "
        f"{'on' if args.validate else 'off'}, rate limit {args.rate_limit:,}/"
        f"{args.rate_window:g} s"
    )
    if first_poll is not None:
        print(
            f"first poll (reads the last 24 h, {first_poll.result.found:,} found): "
            f"{first_poll.finished - first_poll.started:.2f} s, "
            f"{first_poll.result.intercom_calls} Intercom calls"
        )
    print()
    rows = [
        stats_row("latency added: reply - answerable - model", [a.added for a in done]),
        stats_row("  waiting for the next poll", [a.wait_for_poll for a in done]),
        stats_row("  processing: reply - poll start - model", [a.processing for a in done]),
        stats_row("model time (fake model, per answer)", [a.model for a in done]),
        stats_row("customer-visible: reply - message sent", [a.visible for a in done]),
        stats_row("poll period (start to start)", periods),
        stats_row("poll duration", durations),
    ]
    print(table([f"seconds ({len(done)} answers)", "median", "p95", "max"], rows))
    print()
    busiest = max((p.result.read for p in during), default=0)
    print(
        f"polls during the window: {len(during)}; adaptive interval used: "
        + ", ".join(f"{k} x{n}" for k, n in sorted(intervals.items()))
        + f"; most conversations read by one poll: {busiest} (CONCURRENCY {args.concurrency})"
    )
    print("answerable = created_at + debounce (Intercom's created_at is in whole seconds);")
    print("a negative wait: the poll started just before, and read the message just after.")
    print("The interval counts from the end of a poll: period = interval + poll duration.")
    print("customer-visible includes the debounce and created_at's cut to the second.")
    total_calls = sum(window_calls.values())
    print(
        f"Intercom calls from the first message on: {total_calls} "
        f"({total_calls / max(len(done), 1):.2f} per answer: "
        + ", ".join(f"{e} {window_calls[e]}" for e in ENDPOINTS if window_calls[e])
        + ")"
    )
    missing = len(messages) - len(done)
    print(
        f"{missing} messages unanswered, {rate_limited} answers 429, "
        f"{len(invalid)} requests the fake refused as invalid."
    )


if __name__ == "__main__":
    main()
