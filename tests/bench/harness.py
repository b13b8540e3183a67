"""What the Intercom benchmarks share: the fakes, the daemon as `main.py` builds it, tables.

Not a benchmark itself. The fakes run in the benchmark's own process (same GIL as the
daemon), so their CPU time is charged to the daemon: the numbers are upper bounds.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import re
import shlex
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from intercom_responder.bootstrap import App, build_app
from intercom_responder.config import load_settings
from intercom_responder.logs import setup_logging
from tests.conftest import ADMIN_ID, OPENAI_KEY, TEAMMATE_ID, TOKEN, daemon_env
from tests.fakes.intercom import FakeIntercom, RecordedRequest
from tests.fakes.openai_server import FakeOpenAI

REPO = Path(__file__).resolve().parents[2]

#: Intercom allows 10,000 calls a minute per app, spread over 10 s windows.
RATE_LIMIT = 1666
RATE_WINDOW = 10.0
ANSWER = "You can reset it under Settings > Security."
CONFIDENCE = 0.93

#: Request kinds, in the order the tables show them.
ENDPOINTS = ("search", "GET conversation", "reply", "PUT read", "other")


# --------------------------------------------------------------------------- report


def print_header(title: str) -> None:
    """Title, machine, date, commit and the command, so a pasted table says where it came from."""
    cpus = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    cores = f"{cpus} CPUs" + (f" ({usable} usable)" if usable != cpus else "")
    module = Path(sys.argv[0]).with_suffix("").name
    print(title)
    print(
        f"machine: {cores}, Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.machine()}"
    )
    print(f"date:    {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
    print(f"code:    {_git_describe()}")
    print(f"command: python -m tests.bench.{module} {shlex.join(sys.argv[1:])}".rstrip())
    print()


def _git_describe() -> str:
    """Commit, and which daemon files differ from it (the numbers depend on them)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "intercom_responder"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    files = [line[3:] for line in changed if line.strip()]
    return commit + (f" + uncommitted changes in {', '.join(files)}" if files else "")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain-text table: numbers right-aligned, text left-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        all(_is_number(row[i]) for row in cells) and bool(cells) for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _is_number(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d,]*\.?\d+( ?(s|ms|%|x))?|-", text))


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# --------------------------------------------------------------------------- arguments


def add_fake_arguments(parser: argparse.ArgumentParser, *, validate: bool) -> None:
    parser.add_argument(
        "--validate",
        action=argparse.BooleanOptionalAction,
        default=validate,
        help="validate every request against Intercom's OpenAPI description in the fake "
        "(~3-6 ms of CPU per request, in this process, serialised; default: %(default)s)",
    )
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=RATE_LIMIT,
        metavar="N",
        help="the fake Intercom's calls per window (default %(default)s: 10,000 a minute)",
    )
    parser.add_argument(
        "--rate-window",
        type=float,
        default=RATE_WINDOW,
        metavar="SECONDS",
        help="the fake Intercom's rate-limit window (default %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="the daemon's LOG_LEVEL, logged to stderr (default %(default)s)",
    )


def int_list(raw: str) -> list[int]:
    try:
        values = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a list like 1,4,8") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("give positive whole numbers, like 1,4,8")
    return values


# --------------------------------------------------------------------------- fakes


@dataclass(frozen=True)
class ChatCall:
    """One chat completion as the fake model served it."""

    conversation_id: str | None
    started: float  # time.time() when the request arrived
    finished: float  # time.time() when the answer was ready (after `delay`)

    @property
    def seconds(self) -> float:
        return self.finished - self.started


_CUSTOMER_LINE = re.compile(r"^Customer: Customer (\d+)$", re.MULTILINE)


class TimedFakeOpenAI(FakeOpenAI):
    """The fake model, also recording when each chat request arrived and was answered.

    Conversations are recognised by their customer's name, "Customer <conversation id>",
    which the daemon puts in the prompt (see `new_conversation`).
    """

    def __init__(self, api_key: str = OPENAI_KEY) -> None:
        super().__init__(api_key=api_key)
        self.chat_calls: list[ChatCall] = []
        self._calls_lock = threading.Lock()

    def _chat_completions(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        started = time.time()
        try:
            return super()._chat_completions(body)
        finally:
            call = ChatCall(_conversation_of(body), started, time.time())
            with self._calls_lock:
                self.chat_calls.append(call)

    def peak_in_flight(self) -> int:
        """The most chat requests the fake was serving at the same time."""
        events = sorted(
            [(c.started, 1) for c in self.chat_calls] + [(c.finished, -1) for c in self.chat_calls]
        )
        peak = current = 0
        for _, step in events:
            current += step
            peak = max(peak, current)
        return peak


def _conversation_of(body: dict[str, Any]) -> str | None:
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        match = _CUSTOMER_LINE.search(content) if isinstance(content, str) else None
        if match:
            return match.group(1)
    return None


@contextmanager
def fakes(
    *,
    validate: bool,
    rate_limit: int = RATE_LIMIT,
    rate_window: float = RATE_WINDOW,
    model_delay: float = 0.0,
) -> Iterator[tuple[FakeIntercom, TimedFakeOpenAI]]:
    """A fresh fake Intercom (with the bot and a teammate) and a confident fake model."""
    with (
        FakeIntercom(
            token=TOKEN, validate=validate, rate_limit=rate_limit, rate_window=rate_window
        ) as intercom,
        TimedFakeOpenAI() as model,
    ):
        intercom.add_admin(ADMIN_ID, "Responder Bot")
        intercom.add_admin(TEAMMATE_ID, "Tina Teammate")
        model.set_json_reply(ANSWER, CONFIDENCE, "documented")
        model.delay = model_delay
        yield intercom, model


class Conversations:
    """Builds the open conversations of a benchmark in the fake Intercom."""

    def __init__(self, intercom: FakeIntercom, first_id: int = 200_001) -> None:
        self._intercom = intercom
        self._next_id = first_id

    def new(self, *, created_at: int) -> str:
        """A conversation whose customer wrote at `created_at`; waits for an answer."""
        conversation_id = str(self._next_id)
        self._next_id += 1
        return self._intercom.create_conversation(
            f"<p>How do I reset my password? (conversation {conversation_id})</p>",
            conversation_id=conversation_id,
            customer_name=f"Customer {conversation_id}",
            created_at=created_at,
        )

    def answered_by_teammate(self, *, created_at: int, answered_at: int) -> str:
        """Open, but a teammate answered last: nobody waits on the daemon."""
        conversation_id = self.new(created_at=created_at)
        self._intercom.admin_writes(
            conversation_id, TEAMMATE_ID, "<p>Done, anything else?</p>", created_at=answered_at
        )
        return conversation_id

    def customer_came_back(self, *, created_at: int, answered_at: int, wrote_at: int) -> str:
        """A teammate answered, then the customer wrote again: waits for an answer."""
        conversation_id = self.answered_by_teammate(created_at=created_at, answered_at=answered_at)
        self._intercom.customer_writes(
            conversation_id, "<p>Thanks! And how do I change my email?</p>", created_at=wrote_at
        )
        return conversation_id


def add_waiting(conversations: Conversations, count: int, rng: random.Random) -> list[str]:
    """`count` customers waiting 60-300 s (past any debounce up to 60 s): every other one
    a new conversation, the others customers writing again after a teammate answered."""
    now = int(time.time())
    ids = []
    for i in range(count):
        wrote = now - rng.randint(60, 300)
        if i % 2:
            ids.append(conversations.new(created_at=wrote))
        else:
            ids.append(
                conversations.customer_came_back(
                    created_at=wrote - 7200, answered_at=wrote - 7000, wrote_at=wrote
                )
            )
    return ids


def add_idle(conversations: Conversations, count: int, rng: random.Random) -> list[str]:
    """`count` open conversations a teammate answered last, spread over the last day
    (all of them inside the daemon's first search, which looks back 24 hours)."""
    now = int(time.time())
    ids = []
    for _ in range(count):
        created = now - rng.randint(3600, 23 * 3600)
        ids.append(
            conversations.answered_by_teammate(created_at=created, answered_at=created + 300)
        )
    return ids


def endpoint(request: RecordedRequest) -> str:
    """Which of the daemon's Intercom calls this request was."""
    if request.method == "POST" and request.path == "/conversations/search":
        return "search"
    if re.fullmatch(r"/conversations/[^/]+", request.path):
        if request.method == "GET":
            return "GET conversation"
        if request.method == "PUT":
            return "PUT read"
    if request.method == "POST" and re.fullmatch(r"/conversations/[^/]+/reply", request.path):
        return "reply"
    return "other"


def by_endpoint(requests: Iterable[RecordedRequest]) -> Counter[str]:
    return Counter(endpoint(r) for r in requests)


def replies_by_us(requests: Iterable[RecordedRequest]) -> list[RecordedRequest]:
    """Comment replies as the bot that Intercom accepted (notes are not answers)."""
    return [
        r
        for r in requests
        if endpoint(r) == "reply"
        and r.status == 200
        and isinstance(r.json, dict)
        and r.json.get("message_type") == "comment"
        and str(r.json.get("admin_id")) == ADMIN_ID
    ]


def conversation_of(request: RecordedRequest) -> str:
    return request.path.split("/")[2]


# --------------------------------------------------------------------------- the daemon


@contextmanager
def daemon(
    intercom: FakeIntercom,
    model: FakeOpenAI,
    state_dir: Path,
    *,
    log_level: str = "WARNING",
    **overrides: str,
) -> Iterator[App]:
    """The daemon exactly as `main.py` builds it: settings from the environment, then
    `build_app(load_settings(env))`, logging set up as `cli.main` does. Closed after."""
    env = daemon_env(intercom, model, state_dir, LOG_LEVEL=log_level, **overrides)
    settings = load_settings(env)
    setup_logging(settings.log_level, settings.log_format, settings.secrets())
    app = build_app(settings, out=io.StringIO())
    try:
        yield app
    finally:
        app.close()
