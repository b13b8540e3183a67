"""Benchmark: from Intercom's webhook notification to the daemon's reply reaching Intercom.

    python -m tests.bench.webhook_latency [--messages 40] [--window 30] [--idle 1000]

The real daemon, built as `main.py` builds it, with its webhook receiver on
127.0.0.1 (WEBHOOK_ADDR, INTERCOM_CLIENT_SECRET) and its loop (`Poller.run_forever()`)
in a thread, against a fake Intercom holding IDLE open conversations a teammate answered
last. The first poll (at once) reads the whole day; once it is done, MESSAGES customers
write again, one each, at random moments over WINDOW seconds. Right after each message is
written into the fake Intercom, a signed `conversation.user.replied` notification for its
conversation is POSTed to the receiver (from a small pool of sender threads, which do
not wait for the reply). POLL_INTERVAL is 300 s (min and max too) and SWEEP_INTERVAL 0,
so no poll comes during the run: only the webhook can get a message answered.
DEBOUNCE_SECONDS is 0; the fake model answers after MODEL_DELAY seconds, confidently.

For each message, from the fakes' own timestamps (`RecordedRequest.at`, the model's
request log) and the sender's clock (the same process):

    total          = reply request arrives - notification POST starts
    daemon's share = total - model time
    webhook answer = the receiver's 200 arrives - notification POST starts

Model time is measured per conversation by the fake model (arrival to answer), so the
client's own overhead counts as the daemon's. Target: p95 notification -> reply < 2 s.
Prints a table; not a test.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

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
    verdict,
)
from tests.bench.latency import Poll, record_polls
from tests.fakes.intercom import FakeIntercom, RecordedRequest
from tests.fakes.intercom_webhooks import send

TARGET_P95_SECONDS = 2.0
TOPIC = "conversation.user.replied"
SECRET = "bench-webhook-client-secret"
POLL_INTERVAL = 300
#: Bounds, so the benchmark stops by itself whatever the daemon does.
FIRST_POLL_TIMEOUT = 120.0
REPLY_TIMEOUT = 30.0  # after the last notification
SEND_TIMEOUT = 10.0


@dataclass(frozen=True)
class Delivery:
    """One notification as the sender saw it."""

    status: int  # the receiver's HTTP status; 0 when the POST failed
    posted: float  # time.time() just before the POST
    answered: float  # time.time() when the response (or the failure) came back
    error: str = ""

    @property
    def seconds(self) -> float:
        return self.answered - self.posted


@dataclass(frozen=True)
class Message:
    conversation_id: str
    written: float  # time.time() just before the customer's message was written
    delivery: Future[Delivery]


@dataclass(frozen=True)
class Answer:
    message: Message
    delivery: Delivery
    reply_at: float
    model: float

    @property
    def total(self) -> float:
        return self.reply_at - self.delivery.posted

    @property
    def daemon(self) -> float:
        return self.total - self.model


def notify(url: str, conversation_id: str) -> Delivery:
    """POST one signed notification; never raises (a failure is a Delivery with status 0)."""
    posted = time.time()
    try:
        response = send(url, TOPIC, conversation_id, SECRET, timeout=SEND_TIMEOUT)
    except Exception as exc:  # reported in the summary, not fatal to the run
        return Delivery(0, posted, time.time(), f"{type(exc).__name__}: {exc}")
    return Delivery(response.status_code, posted, time.time())


def inject(
    intercom: FakeIntercom,
    url: str,
    targets: Sequence[str],
    window: float,
    rng: random.Random,
    senders: ThreadPoolExecutor,
) -> list[Message]:
    """Each target's customer writes once, at random moments over `window`; a notification
    for it is handed to `senders` right after (this loop does not wait for it)."""
    offsets = sorted(rng.uniform(0, window) for _ in targets)
    start = time.time()
    messages = []
    for conversation_id, offset in zip(targets, offsets, strict=True):
        time.sleep(max(0.0, start + offset - time.time()))
        written = time.time()
        intercom.customer_writes(
            conversation_id, "<p>Hello again: how do I change my email address?</p>"
        )
        delivery = senders.submit(notify, url, conversation_id)
        messages.append(Message(conversation_id, written, delivery))
    return messages


def wait_for_replies(
    intercom: FakeIntercom, messages: Sequence[Message], timeout: float
) -> tuple[dict[str, RecordedRequest], Counter[str]]:
    """The first reply by the bot to each message (waiting up to `timeout` seconds), and
    how many replies each conversation got after its message."""
    deadline = time.time() + timeout
    written = {m.conversation_id: m.written for m in messages}
    replies: dict[str, RecordedRequest] = {}
    counts: Counter[str] = Counter()
    while True:
        counts.clear()
        for request in replies_by_us(intercom.calls("POST", "/conversations/")):
            cid = conversation_of(request)
            if cid in written and request.at >= written[cid]:
                counts[cid] += 1
                if cid not in replies or request.at < replies[cid].at:
                    replies[cid] = request
        if len(replies) == len(messages) or time.time() >= deadline:
            return replies, counts
        time.sleep(0.2)


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
    deliveries: dict[str, Delivery],
    replies: dict[str, RecordedRequest],
    calls: Sequence[ChatCall],
) -> list[Answer]:
    found = []
    for message in messages:
        reply = replies.get(message.conversation_id)
        delivery = deliveries.get(message.conversation_id)
        if reply is None or delivery is None:
            continue
        model = model_seconds(calls, message.conversation_id, delivery.posted, reply.at)
        found.append(Answer(message, delivery, reply.at, model))
    return found


def stats_row(label: str, values: Sequence[float]) -> list[str]:
    marks = (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 1.0))
    return [label, *(f"{v:.3f}" for v in marks)]


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.webhook_latency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Memory (Mem0) is off (MEMORY_TOP_K=0). The fakes and the sender run in this "
        "process: their CPU time counts against the daemon.",
    )
    parser.add_argument(
        "--messages", type=int, default=40, help="customer messages (40; at least 40)"
    )
    parser.add_argument(
        "--window", type=float, default=30.0, metavar="SECONDS", help="spread over (30 s)"
    )
    parser.add_argument(
        "--idle", type=int, default=1000, help="open conversations in the inbox (1000)"
    )
    parser.add_argument(
        "--model-delay",
        type=float,
        default=0.5,
        metavar="SECONDS",
        help="the fake model's time per answer (0.5)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="CONCURRENCY (default 8)")
    parser.add_argument(
        "--senders", type=int, default=4, help="threads sending the notifications (4)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (7)")
    add_fake_arguments(parser, validate=False)
    args = parser.parse_args()
    if args.messages < 40:
        parser.error("--messages must be at least 40")
    if args.window <= 0 or args.senders < 1:
        parser.error("--window must be positive and --senders at least 1")

    print_header("Webhook notification -> reply latency")
    rng = random.Random(args.seed)
    with (
        fakes(
            validate=args.validate,
            rate_limit=args.rate_limit,
            rate_window=args.rate_window,
            model_delay=args.model_delay,
        ) as (intercom, model),
        tempfile.TemporaryDirectory(prefix="bench-webhook-latency-") as state_dir,
    ):
        inbox = max(args.idle, args.messages)
        targets = rng.sample(add_idle(Conversations(intercom), inbox, rng), args.messages)
        overrides = {
            "CONCURRENCY": str(args.concurrency),
            "MEMORY_TOP_K": "0",
            "DEBOUNCE_SECONDS": "0",
            "POLL_INTERVAL": str(POLL_INTERVAL),
            "POLL_INTERVAL_MIN": str(POLL_INTERVAL),
            "POLL_INTERVAL_MAX": str(POLL_INTERVAL),
            "SWEEP_INTERVAL": "0",
            "WEBHOOK_ADDR": "127.0.0.1:0",
            "INTERCOM_CLIENT_SECRET": SECRET,
        }
        with daemon(intercom, model, Path(state_dir), log_level=args.log_level, **overrides) as app:
            if app.nudges is None:
                raise SystemExit("the daemon has no webhook receiver (app.nudges is None)")
            app.start(serve_health=False)
            if app.webhook is None:
                raise SystemExit("app.start() did not start the webhook receiver")
            url = app.webhook.url
            polls: list[Poll] = record_polls(app.poller)
            loop = threading.Thread(target=app.poller.run_forever, name="poll-loop", daemon=True)
            loop.start()
            deadline = time.time() + FIRST_POLL_TIMEOUT
            while not polls and time.time() < deadline:  # the first poll reads the whole day
                time.sleep(0.05)
            if not polls:
                app.stopping.set()
                loop.join(timeout=60)
                raise SystemExit(f"the first poll did not finish in {FIRST_POLL_TIMEOUT:g} s")
            first_poll = polls[0]
            window_start = time.time()
            with ThreadPoolExecutor(args.senders, thread_name_prefix="notify") as senders:
                messages = inject(intercom, url, targets, args.window, rng, senders)
                replies, reply_counts = wait_for_replies(intercom, messages, REPLY_TIMEOUT)
            deliveries = {m.conversation_id: m.delivery.result() for m in messages}
            run_end = time.time()
            pending = app.nudges.pending()
            app.stopping.set()
            loop.join(timeout=60)
        calls = list(model.chat_calls)
        invalid = list(intercom.validation_errors)
        rate_limited = sum(1 for r in intercom.requests if r.status == 429)
        window_requests = [r for r in intercom.requests if window_start <= r.at <= run_end]

    done = answers(messages, deliveries, replies, calls)
    statuses = Counter(d.status for d in deliveries.values())
    errors = [d.error for d in deliveries.values() if d.error]
    polls_during = [p for p in polls if p.started >= window_start]
    window_calls = by_endpoint(window_requests)
    twice = sum(1 for n in reply_counts.values() if n > 1)

    print(
        f"inbox: {inbox:,} open conversations a teammate answered last; {args.messages} of "
        f"their customers write again at random over {args.window:g} s, each followed at once "
        f"by a signed {TOPIC} notification ({args.senders} sender threads)"
    )
    print(
        f"daemon: run_forever(), POLL_INTERVAL={POLL_INTERVAL} (min {POLL_INTERVAL}, max "
        f"{POLL_INTERVAL}), SWEEP_INTERVAL=0, DEBOUNCE_SECONDS=0, "
        f"CONCURRENCY={args.concurrency}, MEMORY_TOP_K=0, WEBHOOK_ADDR=127.0.0.1:0"
    )
    print(
        f"fakes: model {args.model_delay:g} s per answer; Intercom validation "
        f"{'on' if args.validate else 'off'}, rate limit {args.rate_limit:,}/"
        f"{args.rate_window:g} s"
    )
    print(
        f"first poll (reads the last 24 h, {first_poll.result.found:,} found): "
        f"{first_poll.finished - first_poll.started:.2f} s, "
        f"{first_poll.result.intercom_calls} Intercom calls; polls after it during the run: "
        f"{len(polls_during)}"
    )
    print()
    rows = [
        stats_row("total: notification sent -> reply", [a.total for a in done]),
        stats_row("  daemon's own share: total - model", [a.daemon for a in done]),
        stats_row("  model time (fake model, per answer)", [a.model for a in done]),
        stats_row(
            "webhook answer: POST -> 200", [d.seconds for d in deliveries.values() if d.status]
        ),
    ]
    print(table([f"seconds ({len(done)} answers)", "median", "p95", "max"], rows))
    print()
    total_calls = len(window_requests)
    print(
        f"Intercom calls from the first message on: {total_calls} "
        f"({total_calls / max(len(done), 1):.2f} per answer: "
        + ", ".join(f"{e} {window_calls[e]}" for e in ENDPOINTS if window_calls[e])
        + ")"
    )
    print(
        "webhook responses: "
        + ", ".join(f"{s or 'failed'} x{n}" for s, n in sorted(statuses.items()))
        + (f" (first failure: {errors[0]})" if errors else "")
    )
    missing = len(messages) - len(done)
    print(
        f"{missing} messages unanswered, {twice} answered more than once, "
        f"{rate_limited} answers 429, {len(invalid)} requests the fake refused as invalid; "
        f"{pending} conversations still queued or being handled by the webhook's workers."
    )
    print()
    p95 = percentile([a.total for a in done], 0.95)
    ok = p95 < TARGET_P95_SECONDS and missing == 0
    print(
        table(
            ["target", "value", "limit", "result"],
            [
                [
                    "p95 notification -> reply",
                    f"{p95:.3f} s",
                    f"< {TARGET_P95_SECONDS:g} s",
                    verdict(ok),
                ],
                ["unanswered messages", str(missing), "0", verdict(missing == 0)],
            ],
        )
    )


if __name__ == "__main__":
    main()
