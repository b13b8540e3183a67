"""A fake Slack for tests: the Web API over HTTP plus the Socket Mode WebSocket.

It is a real aiohttp server on 127.0.0.1 (random port) running its own asyncio loop in
a background thread, speaking the wire protocols, so the real clients work against it::

    with FakeSlack() as fake:
        web = WebClient(token=fake.bot_token, base_url=fake.api_url)
        web.chat_postMessage(channel=fake.channel_id, text="hi", blocks=[...])

        # Bolt over Socket Mode (sync built-in handler or the aiohttp-based async one)
        app = App(client=WebClient(token=fake.bot_token, base_url=fake.api_url))
        handler = SocketModeHandler(app, fake.app_token)
        handler.connect()
        assert fake.wait_connected(5)
        envelope_id = fake.send_block_action("U0ALICE", "approve")
        assert fake.wait_ack(envelope_id) == {"envelope_id": envelope_id}

``api_url`` is ``http://127.0.0.1:PORT/api/``: the SDK joins it with ``urljoin``, so the
trailing slash is required (that is also how ``https://slack.com/api/`` is spelled).
Pointing the Web API client there is enough for Socket Mode too: ``apps.connections.open``
answers a ``ws://127.0.0.1:PORT/link/?ticket=...`` URL.

Web API (``/api/<method>``, GET or POST; query, form, multipart or JSON bodies; the token
as ``Authorization: Bearer`` or, for non-JSON bodies, a ``token`` parameter). Answers are
HTTP 200 ``{"ok": true, ...}`` / ``{"ok": false, "error": ...}`` like Slack, HTTP 429 with
``Retry-After`` for ``ratelimited``:

* ``auth.test``, ``chat.postMessage``, ``chat.update``, ``chat.postEphemeral``,
  ``views.open``, ``conversations.info`` (bot token; app token -> ``not_allowed_token_type``),
* ``apps.connections.open`` (app token; bot token -> ``not_allowed_token_type``),
* anything else -> ``unknown_method``.

Blocks and modals are checked against Slack's documented limits (section text 3,000,
button text 75 / value 2,000, header 150, unique ``block_id``, modal title 24,
``private_metadata`` 3,000, ``plain_text_input.initial_value`` 3,000, ...). A rejected
request answers ``invalid_blocks`` (messages) or ``invalid_arguments`` (views) with
``response_metadata.messages`` like Slack's, and is also listed in
``fake.validation_errors`` so a fixture can assert nothing Slack would refuse was sent.
Unescaped ``<!channel>``/``<!here>``/``<!everyone>``/``<!subteam^..>`` in mrkdwn text land
in ``fake.broadcast_mentions``.

Socket Mode (``/link/?ticket=...``): every connection gets ``hello`` first; at most
``max_connections`` (10) are open at once, one more gets ``disconnect`` with reason
``too_many_websockets`` and is closed (what Slack does). Tickets stay valid for the life
of the fake (the SDK's connect loop retries the same URL after a failed handshake).
Envelopes go to the newest open connection unless ``via`` picks another: real Slack
spreads an app's events over all its open connections (one per replica of a daemon), so
``send_block_action(..., via=0)`` sends on the oldest open one, ``via=1`` the next, in the
order they were opened (``open_connections`` lists their serials). Acks are accepted on
any connection; ``Ack.connection`` tells which.

Notes on the clients (slack-sdk 3.47, slack-bolt 1.30), measured against this fake:

* ``AsyncSocketModeHandler``'s client reconnects at once (~10 ms) on a ``disconnect``
  message or a close frame, but after an abrupt drop (no close frame) it only notices on
  its monitor tick, every ``ping_interval`` seconds (handler default 10 s; a silent drop,
  ``drop_connections(silent=True)``, takes ~2 ticks). ``close_async()`` takes ~2 ms.
* The built-in ``SocketModeHandler`` reconnects at once on ``disconnect`` but its reader
  stays blocked on the old socket (``recv`` timeout 3 s) until the server closes it: the
  first click after a reconnect is acked ~0.27 s later when the fake closes 0.2 s after
  ``refresh_requested``, ~3.1 s when it does not close (``close_after=None``, or reason
  ``warning``). After a drop it spins on EOF until 5 failed pings (~60 s with the
  default ``ping_interval`` 10; a silent drop ~51 s). ``close()`` takes 3 s.
* Bolt's handlers only send an ack when the app answered 200: a listener that raises
  before ``ack()`` gets no ack at all (Slack then shows the user an error).
* The clients must be built inside the loop that runs them: the aiohttp
  ``SocketModeClient`` schedules a task in its constructor.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import logging
import re
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import WSCloseCode, WSMsgType, web

__all__ = [
    "MAX_CONNECTIONS",
    "TRIGGER_TTL",
    "Ack",
    "Ephemeral",
    "FakeSlack",
    "OpenedView",
    "PostedMessage",
    "ResponseUrlPost",
    "SlackCall",
]

log = logging.getLogger(__name__)

TRIGGER_TTL = 3.0
"""Seconds a ``trigger_id`` stays usable for ``views.open`` (Slack: 3 s)."""

MAX_CONNECTIONS = 10
"""Socket Mode connections Slack allows per app at once."""

DisconnectReason = Literal["refresh_requested", "warning", "link_disabled", "too_many_websockets"]

# How long after the ``disconnect`` message the fake closes the socket (None: it does not).
# Slack sends ``warning`` some seconds before a ``refresh_requested``, and closes the socket
# shortly after ``refresh_requested``; ``link_disabled`` closes it at once.
_CLOSE_AFTER: dict[str, float | None] = {
    "refresh_requested": 0.2,
    "warning": None,
    "link_disabled": 0.0,
    "too_many_websockets": 0.0,
}

_BOT_METHODS = frozenset(
    {
        "auth.test",
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "views.open",
        "conversations.info",
    }
)
_APP_METHODS = frozenset({"apps.connections.open"})
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata")
_BROADCAST = re.compile(r"<!(channel|here|everyone|subteam\^[A-Z0-9]+)(\|[^>]*)?>")
_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)


class _ApiError(Exception):
    def __init__(self, error: str, *, status: int = 200, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra


@dataclass(frozen=True)
class SlackCall:
    """One Web API request as the fake understood it."""

    method: str
    token_kind: str  # "bot" | "app" | "invalid" | "none"
    args: dict[str, Any]  # query + body, JSON-string fields (blocks, view, ...) parsed
    transport: str  # "json" | "form" | "query"
    error: str | None  # None when the answer was ok
    at: float  # time.time()


@dataclass
class PostedMessage:
    """A message in a channel; ``text``/``blocks`` are the current version."""

    channel: str
    ts: str
    text: str
    blocks: list[Any]
    thread_ts: str | None = None
    deleted: bool = False
    # Every change after posting: {"source": "chat.update"|"response_url", "text", "blocks", "at"}
    updates: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Ephemeral:
    channel: str
    user: str
    text: str
    blocks: list[Any]
    message_ts: str


@dataclass(frozen=True)
class OpenedView:
    id: str
    trigger_id: str
    user_id: str | None  # the user whose interaction issued the trigger
    view: dict[str, Any]  # as views.open answered it
    at: float


@dataclass(frozen=True)
class ResponseUrlPost:
    """A POST to a ``response_url`` the fake handed out (Bolt's ``respond()``)."""

    envelope_id: str
    body: dict[str, Any]
    at: float


@dataclass(frozen=True)
class Ack:
    envelope_id: str
    message: dict[str, Any]  # what the client sent: {"envelope_id", "payload"?}
    latency: float  # seconds since the envelope was (last) sent
    connection: int  # serial of the connection it arrived on


@dataclass
class _Conn:
    serial: int
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    opened_at: float
    ready: bool = False  # hello sent
    closed: bool = False
    silenced: bool = False  # dropped silently: still open, never read or written again

    @property
    def usable(self) -> bool:
        return self.ready and not self.closed and not self.ws.closed


@dataclass
class _Envelope:
    text: str
    kind: str
    sent_at: list[float] = field(default_factory=list)  # time.monotonic() of every send


@dataclass
class _Failure:
    error: str
    status: int
    retry_after: int
    remaining: int


def _now_ts(last: str | None) -> str:
    """A Slack ``ts`` ("1700000000.000100") later than ``last``."""
    micros = int(time.time() * 1_000_000)
    if last is not None:
        sec, _, frac = last.partition(".")
        micros = max(micros, int(sec) * 1_000_000 + int(frac) + 1)
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _random_id(prefix: str, n: int = 10) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(n))


def _parse_json_fields(args: dict[str, Any]) -> None:
    for key in _JSON_FIELDS:
        value = args.get(key)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                args[key] = json.loads(value)


def _mrkdwn_texts(text: Any, blocks: Any) -> list[str]:
    """Every string Slack renders as mrkdwn (and so parses for mentions)."""
    found = [text] if isinstance(text, str) else []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


# --------------------------------------------------------------------------- validation


class _Checker:
    """Collects Slack-style schema errors: "[ERROR] ... [json-pointer:/blocks/0/text]"."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, pointer: str, what: str) -> None:
        self.errors.append(f"[ERROR] {what} [json-pointer:{pointer}]")

    def text_obj(self, obj: Any, ptr: str, *, max_len: int, plain_only: bool = False) -> None:
        if not isinstance(obj, dict):
            self.err(ptr, "must be a text object")
            return
        kinds = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if obj.get("type") not in kinds:
            self.err(f"{ptr}/type", f"must be one of {', '.join(kinds)}")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.err(f"{ptr}/text", "must be more than 0 characters")
        elif len(text) > max_len:
            self.err(f"{ptr}/text", f"must be less than {max_len + 1} characters")

    def length(self, value: Any, ptr: str, max_len: int) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            self.err(ptr, "must be a string")
        elif len(value) > max_len:
            self.err(ptr, f"must be less than {max_len + 1} characters")

    def element(self, el: Any, ptr: str, action_ids: set[str]) -> None:
        if not isinstance(el, dict) or not isinstance(el.get("type"), str):
            self.err(ptr, "must be an element object with a type")
            return
        kind = el["type"]
        action_id = el.get("action_id")
        self.length(action_id, f"{ptr}/action_id", 255)
        if isinstance(action_id, str):
            if action_id in action_ids:
                self.err(f"{ptr}/action_id", f"duplicate action_id {action_id!r} in block")
            action_ids.add(action_id)
        if kind == "button":
            self.text_obj(el.get("text"), f"{ptr}/text", max_len=75, plain_only=True)
            self.length(el.get("value"), f"{ptr}/value", 2000)
            self.length(el.get("url"), f"{ptr}/url", 3000)
            if el.get("style") not in (None, "primary", "danger"):
                self.err(f"{ptr}/style", "must be primary or danger")
        elif kind == "plain_text_input":
            max_length = el.get("max_length", 3000)
            if not isinstance(max_length, int) or not 1 <= max_length <= 3000:
                self.err(f"{ptr}/max_length", "must be between 1 and 3000")
                max_length = 3000
            initial = el.get("initial_value")
            self.length(initial, f"{ptr}/initial_value", 3000)
            if isinstance(initial, str) and max_length < len(initial) <= 3000:
                self.err(f"{ptr}/initial_value", "must not be longer than max_length")
            if el.get("placeholder") is not None:
                self.text_obj(el["placeholder"], f"{ptr}/placeholder", max_len=150, plain_only=True)

    def blocks(self, blocks: Any, ptr: str, *, max_blocks: int) -> None:
        if not isinstance(blocks, list):
            self.err(ptr, "must be an array")
            return
        if len(blocks) > max_blocks:
            self.err(ptr, f"must contain at most {max_blocks} items")
        block_ids: set[str] = set()
        for i, block in enumerate(blocks):
            bptr = f"{ptr}/{i}"
            if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
                self.err(bptr, "unsupported block type")
                continue
            block_id = block.get("block_id")
            self.length(block_id, f"{bptr}/block_id", 255)
            if isinstance(block_id, str):
                if block_id in block_ids:
                    self.err(f"{bptr}/block_id", f"duplicate block_id {block_id!r}")
                block_ids.add(block_id)
            self.block(block, bptr)

    def block(self, block: dict[str, Any], ptr: str) -> None:
        kind = block["type"]
        action_ids: set[str] = set()
        if kind == "section":
            if "text" not in block and "fields" not in block:
                self.err(ptr, "must provide text or fields")
            if "text" in block:
                self.text_obj(block["text"], f"{ptr}/text", max_len=3000)
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                    self.err(f"{ptr}/fields", "must contain 1 to 10 items")
                else:
                    for j, obj in enumerate(fields):
                        self.text_obj(obj, f"{ptr}/fields/{j}", max_len=2000)
            if "accessory" in block:
                self.element(block["accessory"], f"{ptr}/accessory", action_ids)
        elif kind == "header":
            self.text_obj(block.get("text"), f"{ptr}/text", max_len=150, plain_only=True)
        elif kind in ("actions", "context"):
            limit = 25 if kind == "actions" else 10
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= limit:
                self.err(f"{ptr}/elements", f"must contain 1 to {limit} items")
                return
            for j, el in enumerate(elements):
                eptr = f"{ptr}/elements/{j}"
                if kind == "actions":
                    self.element(el, eptr, action_ids)
                elif isinstance(el, dict) and el.get("type") in ("plain_text", "mrkdwn"):
                    self.text_obj(el, eptr, max_len=3000)
        elif kind == "input":
            self.text_obj(block.get("label"), f"{ptr}/label", max_len=2000, plain_only=True)
            self.element(block.get("element"), f"{ptr}/element", action_ids)
        elif kind == "markdown":
            self.length(block.get("text"), f"{ptr}/text", 12000)


def _check_message_blocks(blocks: Any) -> list[str]:
    checker = _Checker()
    checker.blocks(blocks, "/blocks", max_blocks=50)
    return checker.errors


def _check_view(view: Any) -> list[str]:
    checker = _Checker()
    if not isinstance(view, dict):
        checker.err("/view", "must be an object")
        return checker.errors
    if view.get("type") != "modal":
        checker.err("/view/type", "must be modal")
    checker.text_obj(view.get("title"), "/view/title", max_len=24, plain_only=True)
    for key in ("submit", "close"):
        if view.get(key) is not None:
            checker.text_obj(view[key], f"/view/{key}", max_len=24, plain_only=True)
    checker.blocks(view.get("blocks"), "/view/blocks", max_blocks=100)
    blocks = view.get("blocks")
    has_input = isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "input" for b in blocks
    )
    if has_input and view.get("submit") is None:
        checker.err("/view/submit", "is required when the view has input blocks")
    checker.length(view.get("private_metadata"), "/view/private_metadata", 3000)
    checker.length(view.get("callback_id"), "/view/callback_id", 255)
    checker.length(view.get("external_id"), "/view/external_id", 255)
    return checker.errors


def _find_action(blocks: list[Any], action_id: str) -> tuple[str | None, dict[str, Any] | None]:
    """The block_id and element of the interactive element ``action_id`` in ``blocks``."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        candidates: list[Any] = []
        if isinstance(block.get("elements"), list):
            candidates.extend(block["elements"])
        if isinstance(block.get("accessory"), dict):
            candidates.append(block["accessory"])
        if isinstance(block.get("element"), dict):
            candidates.append(block["element"])
        for el in candidates:
            if isinstance(el, dict) and el.get("action_id") == action_id:
                block_id = block.get("block_id")
                return (block_id if isinstance(block_id, str) else None), el
    return None, None


# --------------------------------------------------------------------------- the fake


class FakeSlack:
    """A fake Slack workspace with one app: Web API plus Socket Mode, on 127.0.0.1.

    All public methods are thread-safe and meant to be called from the test thread;
    the server runs in its own thread and event loop.
    """

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",
        app_token: str = "xapp-test",
        channel_id: str = "C0REVIEW",
        team_id: str = "T0TEAM",
        channel_name: str = "review",
        team_domain: str = "acme",
        app_id: str = "A123",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.channel_id = channel_id
        self.team_id = team_id
        self.team_domain = team_domain
        self.app_id = app_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.verification_token = "fake-verification-token"
        self.trigger_ttl = TRIGGER_TTL
        self.max_connections = MAX_CONNECTIONS

        self._cond = threading.Condition(threading.RLock())
        self._channels: dict[str, dict[str, Any]] = {}
        self._calls: list[SlackCall] = []
        self._messages: dict[str, PostedMessage] = {}  # by ts
        self._last_ts: str | None = None
        self._ephemerals: list[Ephemeral] = []
        self._views: list[OpenedView] = []
        self._responses: list[ResponseUrlPost] = []
        self._response_urls: dict[str, tuple[str, str | None]] = {}  # key -> (envelope, ts)
        self._triggers: dict[str, tuple[float, str | None]] = {}  # id -> (issued, user)
        self._used_triggers: set[str] = set()
        self._failures: dict[str, deque[_Failure]] = {}
        self._validation_errors: list[str] = []
        self._broadcasts: list[str] = []
        self._tickets: set[str] = set()
        self._conns: list[_Conn] = []
        self._opened = 0
        self._refused = 0
        self._envelopes: dict[str, _Envelope] = {}
        self._acks: list[Ack] = []
        self._client_messages: list[Any] = []
        self._serial = itertools.count(1)

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

        self.add_channel(channel_id, channel_name)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        if self._loop is not None:
            raise RuntimeError("FakeSlack already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._run_loop, args=(loop,), daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._port = asyncio.run_coroutine_threadsafe(self._serve(), loop).result(10)
        except BaseException:
            self.stop()
            raise
        thread.name = f"fake-slack:{self._port}"
        return self

    def stop(self) -> None:
        """Close every socket and stop serving (~0.1 s); idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None:
            return
        self._loop = None
        self._thread = None
        if loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(3)
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=3)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(
                "FakeSlack is not started; call start() or use it as a context manager"
            )
        return self._port

    @property
    def api_url(self) -> str:
        """``http://127.0.0.1:PORT/api/`` for ``WebClient(base_url=...)`` (trailing slash)."""
        return f"http://127.0.0.1:{self.port}/api/"

    # ------------------------------------------------------------------ set-up

    def add_channel(self, channel_id: str, name: str, *, is_member: bool = True) -> None:
        """A channel the workspace knows; the bot can post only where ``is_member``."""
        with self._cond:
            self._channels[channel_id] = {
                "id": channel_id,
                "name": name,
                "name_normalized": name,
                "is_channel": True,
                "is_private": False,
                "is_archived": False,
                "is_member": is_member,
                "created": 1_700_000_000,
            }

    def fail_next(
        self,
        method: str,
        error: str = "internal_error",
        *,
        times: int = 1,
        status: int | None = None,
        retry_after: int = 1,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail with ``error``.

        ``ratelimited`` answers HTTP 429 with ``Retry-After: retry_after``; other errors
        HTTP 200 unless ``status`` says otherwise (e.g. 500 for ``fatal_error``).
        """
        code = status if status is not None else (429 if error == "ratelimited" else 200)
        with self._cond:
            self._failures.setdefault(method, deque()).append(
                _Failure(error, code, retry_after, times)
            )

    def issue_trigger(self, user_id: str | None = None, *, age: float = 0.0) -> str:
        """A fresh ``trigger_id`` (as if issued ``age`` seconds ago)."""
        trigger_id = f"{int(time.time() * 1000)}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
        with self._cond:
            self._triggers[trigger_id] = (time.monotonic() - age, user_id)
        return trigger_id

    # ------------------------------------------------------------------ state views

    @property
    def calls(self) -> list[SlackCall]:
        with self._cond:
            return list(self._calls)

    def calls_to(self, method: str) -> list[SlackCall]:
        with self._cond:
            return [c for c in self._calls if c.method == method]

    def wait_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[SlackCall]:
        """Wait until ``method`` was called ``count`` times; returns those calls (maybe fewer)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self._calls if c.method == method]
                left = deadline - time.monotonic()
                if len(found) >= count or left <= 0:
                    return found
                self._cond.wait(left)

    @property
    def messages(self) -> list[PostedMessage]:
        """Snapshots of every posted message, oldest first."""
        with self._cond:
            return [copy.deepcopy(m) for m in self._messages.values()]

    def message(self, ts: str) -> PostedMessage | None:
        with self._cond:
            found = self._messages.get(ts)
            return copy.deepcopy(found) if found is not None else None

    @property
    def ephemerals(self) -> list[Ephemeral]:
        with self._cond:
            return list(self._ephemerals)

    @property
    def views_opened(self) -> list[OpenedView]:
        with self._cond:
            return list(self._views)

    @property
    def responses(self) -> list[ResponseUrlPost]:
        with self._cond:
            return list(self._responses)

    @property
    def validation_errors(self) -> list[str]:
        """One line per request Slack would have rejected as invalid blocks / view."""
        with self._cond:
            return list(self._validation_errors)

    @property
    def broadcast_mentions(self) -> list[str]:
        """mrkdwn texts sent with an unescaped ``<!channel>``-style mention."""
        with self._cond:
            return list(self._broadcasts)

    @property
    def acks(self) -> list[Ack]:
        with self._cond:
            return list(self._acks)

    @property
    def client_messages(self) -> list[Any]:
        """Text frames from clients that were not acks."""
        with self._cond:
            return list(self._client_messages)

    @property
    def connection_count(self) -> int:
        with self._cond:
            return sum(1 for c in self._conns if c.usable)

    @property
    def open_connections(self) -> list[int]:
        """Serials of the open (usable) connections, oldest first: what ``via`` indexes and
        ``Ack.connection`` names."""
        with self._cond:
            return [c.serial for c in self._conns if c.usable]

    @property
    def connections_opened(self) -> int:
        with self._cond:
            return self._opened

    @property
    def connections_refused(self) -> int:
        with self._cond:
            return self._refused

    def wait_connected(self, timeout: float = 5.0, *, min_opened: int = 1) -> bool:
        """Wait until ``min_opened`` connections were ever opened and the newest is open
        (it got ``hello``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                newest = self._conns[-1] if self._conns else None
                if self._opened >= min_opened and newest is not None and newest.usable:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))

    # ------------------------------------------------------------------ socket mode controls

    def send_block_action(
        self,
        user_id: str,
        action_id: str,
        *,
        value: str | None = None,
        message_ts: str | None = None,
        channel: str | None = None,
        block_id: str | None = None,
        user_name: str | None = None,
        ephemeral: bool = False,
        via: int | None = None,
    ) -> str:
        """A user clicks the button ``action_id``; returns the envelope id.

        Without ``message_ts`` the click is on the newest message in ``channel`` (default:
        the review channel). ``block_id``, ``value`` and the button text default to the
        button as it is in the message now (``value`` "" when the message has no such button).
        ``via``: the index of the open connection to send it on, oldest first (default:
        the newest); ``IndexError`` when there is no such connection.
        """
        with self._cond:
            channel_id = channel or self.channel_id
            msg = self._pick_message(channel_id, message_ts)
            ts = msg.ts if msg is not None else message_ts
            if ts is None:
                raise ValueError(f"no message in {channel_id} to click on; pass message_ts")
            found_block, element = _find_action(msg.blocks if msg else [], action_id)
            envelope_id = str(uuid.uuid4())
            trigger_id = self.issue_trigger(user_id)
            response_key = f"{self.team_id}/{next(self._serial)}/{secrets.token_hex(12)}"
            self._response_urls[response_key] = (envelope_id, ts)
            action: dict[str, Any] = {
                "action_id": action_id,
                "block_id": block_id or found_block or _random_id("", 5),
                "value": value if value is not None else str((element or {}).get("value", "")),
                "type": (element or {}).get("type", "button"),
                "action_ts": _now_ts(None),
            }
            if element is not None and "text" in element:
                action["text"] = copy.deepcopy(element["text"])
            if element is not None and "style" in element:
                action["style"] = element["style"]
            payload: dict[str, Any] = {
                "type": "block_actions",
                "user": self._user(user_id, user_name),
                "api_app_id": self.app_id,
                "token": self.verification_token,
                "container": {
                    "type": "message",
                    "message_ts": ts,
                    "channel_id": channel_id,
                    "is_ephemeral": ephemeral,
                },
                "trigger_id": trigger_id,
                "team": {"id": self.team_id, "domain": self.team_domain},
                "enterprise": None,
                "is_enterprise_install": False,
                "channel": {
                    "id": channel_id,
                    "name": self._channels.get(channel_id, {}).get("name", "unknown"),
                },
                "state": {"values": {}},
                "response_url": f"http://127.0.0.1:{self.port}/actions/{response_key}",
                "actions": [action],
            }
            if not ephemeral:
                payload["message"] = self._message_json(msg, ts)
        return self._send_envelope(envelope_id, payload, accepts_response_payload=False, via=via)

    def send_view_submission(
        self,
        user_id: str,
        *,
        callback_id: str,
        private_metadata: str | None = None,
        values: dict[str, dict[str, Any]],
        view_id: str | None = None,
        user_name: str | None = None,
        via: int | None = None,
    ) -> str:
        """A user submits a modal; returns the envelope id.

        ``values`` is ``{block_id: {action_id: text}}`` (a dict instead of text is used as
        the state value as is). The view is the one opened as ``view_id``, or else the
        newest opened view with ``callback_id``, or else a new one; ``private_metadata``
        defaults to that view's. ``via`` as for ``send_block_action``: the submission need
        not reach the connection whose app opened the modal.
        """
        with self._cond:
            opened = None
            for candidate in reversed(self._views):
                if candidate.id == view_id or (
                    view_id is None and candidate.view.get("callback_id") == callback_id
                ):
                    opened = candidate
                    break
            view = copy.deepcopy(opened.view) if opened is not None else self._view_json({})
            if view_id is not None:
                view["id"] = view_id
            view["callback_id"] = callback_id
            if private_metadata is not None:
                view["private_metadata"] = private_metadata
            state: dict[str, dict[str, Any]] = {}
            for block, actions in values.items():
                state[block] = {
                    action: (
                        text
                        if isinstance(text, dict)
                        else {"type": "plain_text_input", "value": text}
                    )
                    for action, text in actions.items()
                }
            view["state"] = {"values": state}
            payload: dict[str, Any] = {
                "type": "view_submission",
                "team": {"id": self.team_id, "domain": self.team_domain},
                "user": self._user(user_id, user_name),
                "api_app_id": self.app_id,
                "token": self.verification_token,
                "trigger_id": self.issue_trigger(user_id),
                "view": view,
                "response_urls": [],
                "is_enterprise_install": False,
                "enterprise": None,
            }
        return self._send_envelope(
            str(uuid.uuid4()), payload, accepts_response_payload=True, via=via
        )

    def envelope(self, envelope_id: str) -> dict[str, Any]:
        """The envelope as sent (``{"envelope_id", "type", "payload", ...}``)."""
        with self._cond:
            parsed: dict[str, Any] = json.loads(self._envelopes[envelope_id].text)
            return parsed

    def replay(self, envelope_id: str, *, via: int | None = None) -> None:
        """Send the same envelope again (as Slack does when it retries), on the newest open
        connection or the one ``via`` picks (a retry may reach another replica)."""
        with self._cond:
            if envelope_id not in self._envelopes:
                raise KeyError(envelope_id)
        self._call(self._send_text(envelope_id, via))

    def wait_ack(
        self, envelope_id: str, timeout: float = 5.0, *, nth: int = 1
    ) -> dict[str, Any] | None:
        """The ``nth`` ack the client sent for ``envelope_id`` (``{"envelope_id",
        "payload"?}``), or None if it did not come within ``timeout``."""
        ack = self._wait_ack(envelope_id, timeout, nth)
        return copy.deepcopy(ack.message) if ack is not None else None

    def ack_latency(self, envelope_id: str, *, nth: int = 1) -> float | None:
        """Seconds from (the latest) sending of the envelope to its ``nth`` ack."""
        ack = self._wait_ack(envelope_id, 0.0, nth)
        return ack.latency if ack is not None else None

    def disconnect(
        self,
        reason: DisconnectReason = "refresh_requested",
        *,
        close_after: float | Literal["default"] | None = "default",
        every: bool = False,
    ) -> None:
        """Send ``{"type": "disconnect", "reason"}`` on the newest (or ``every``) open
        connection, then close it ``close_after`` seconds later (default by reason:
        refresh_requested 0.2 s, link_disabled at once, warning never)."""
        delay = _CLOSE_AFTER.get(reason) if close_after == "default" else close_after
        self._call(self._disconnect(reason, delay, every))

    def drop_connections(self, *, silent: bool = False) -> None:
        """Lose every open connection, without a close frame.

        By default the sockets are closed at once (the client sees EOF). With ``silent``
        they stay open but the fake stops reading and writing, as when the network goes
        away: no more pongs, so only the client's ping timeout can notice.
        """
        self._call(self._drop(silent))

    # ------------------------------------------------------------------ internals: helpers

    def _call(self, coro: Any, timeout: float = 5.0) -> Any:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("FakeSlack is not started")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def _user(self, user_id: str, user_name: str | None) -> dict[str, Any]:
        name = user_name or user_id.lower()
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _pick_message(self, channel: str, ts: str | None) -> PostedMessage | None:
        if ts is not None:
            return self._messages.get(ts)
        in_channel = [m for m in self._messages.values() if m.channel == channel]
        return in_channel[-1] if in_channel else None

    def _message_json(self, msg: PostedMessage | None, ts: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "message",
            "subtype": "bot_message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": ts,
            "text": msg.text if msg is not None else "",
            "blocks": copy.deepcopy(msg.blocks) if msg is not None else [],
        }
        if msg is not None and msg.thread_ts is not None:
            out["thread_ts"] = msg.thread_ts
        return out

    def _view_json(self, view: dict[str, Any]) -> dict[str, Any]:
        view_id = _random_id("V")
        return {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type", "modal"),
            "blocks": copy.deepcopy(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": copy.deepcopy(view.get("title", {"type": "plain_text", "text": "Modal"})),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": copy.deepcopy(view.get("close")),
            "submit": copy.deepcopy(view.get("submit")),
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }

    def _wait_ack(self, envelope_id: str, timeout: float, nth: int) -> Ack | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [a for a in self._acks if a.envelope_id == envelope_id]
                if len(found) >= nth:
                    return found[nth - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def _send_envelope(
        self,
        envelope_id: str,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool,
        via: int | None,
    ) -> str:
        envelope = {
            "envelope_id": envelope_id,
            "type": "interactive",
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        with self._cond:
            self._envelopes[envelope_id] = _Envelope(json.dumps(envelope), payload["type"])
        self._call(self._send_text(envelope_id, via))
        return envelope_id

    def _record_text(self, source: str, text: Any, blocks: Any) -> None:
        for piece in _mrkdwn_texts(text, blocks):
            if _BROADCAST.search(piece):
                self._broadcasts.append(f"{source}: {piece}")

    def _invalid(self, method: str, error: str, problems: list[str]) -> _ApiError:
        self._validation_errors.extend(f"{method}: {p}" for p in problems)
        return _ApiError(error, response_metadata={"messages": problems})

    # ------------------------------------------------------------------ internals: Web API

    def _dispatch(self, method: str, kind: str, args: dict[str, Any]) -> dict[str, Any]:
        if method not in _BOT_METHODS and method not in _APP_METHODS:
            raise _ApiError("unknown_method", req_method=method)
        if kind == "none":
            raise _ApiError("not_authed")
        if kind == "invalid":
            raise _ApiError("invalid_auth")
        if (method in _APP_METHODS) != (kind == "app"):
            raise _ApiError("not_allowed_token_type")
        handlers = {
            "auth.test": self._api_auth_test,
            "apps.connections.open": self._api_apps_connections_open,
            "chat.postMessage": self._api_post_message,
            "chat.update": self._api_chat_update,
            "chat.postEphemeral": self._api_post_ephemeral,
            "views.open": self._api_views_open,
            "conversations.info": self._api_conversations_info,
        }
        return handlers[method](args)

    def _api_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_domain.title(),
            "user": "review-bot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _api_apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        ticket = str(uuid.uuid4())
        self._tickets.add(ticket)
        return {"url": f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"}

    def _channel(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channels.get(str(args.get("channel", "")))
        if channel is None:
            raise _ApiError("channel_not_found")
        return channel

    def _content(
        self, method: str, args: dict[str, Any], *, required: bool = True
    ) -> tuple[Any, Any]:
        text, blocks = args.get("text"), args.get("blocks")
        if required and not text and blocks is None and not args.get("attachments"):
            raise _ApiError("no_text")
        if isinstance(text, str) and len(text) > 40000:
            raise _ApiError("msg_too_long")
        if blocks is not None:
            problems = _check_message_blocks(blocks)
            if problems:
                raise self._invalid(method, "invalid_blocks", problems)
        return text, blocks

    def _api_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        if not channel["is_member"]:
            raise _ApiError("not_in_channel")
        text, blocks = self._content("chat.postMessage", args)
        ts = self._last_ts = _now_ts(self._last_ts)
        thread_ts = args.get("thread_ts")
        msg = PostedMessage(
            channel=channel["id"],
            ts=ts,
            text=str(text or ""),
            blocks=copy.deepcopy(blocks) if isinstance(blocks, list) else [],
            thread_ts=str(thread_ts) if thread_ts else None,
        )
        self._messages[ts] = msg
        self._record_text(f"chat.postMessage {ts}", text, blocks)
        return {"channel": channel["id"], "ts": ts, "message": self._message_json(msg, ts)}

    def _api_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        ts = str(args.get("ts", ""))
        msg = self._messages.get(ts)
        if msg is None or msg.channel != channel["id"] or msg.deleted:
            raise _ApiError("message_not_found")
        text, blocks = self._content("chat.update", args, required=False)
        if text is not None:  # Slack keeps what an update leaves out
            msg.text = str(text)
        if isinstance(blocks, list):
            msg.blocks = copy.deepcopy(blocks)
        msg.updates.append(
            {
                "source": "chat.update",
                "text": msg.text,
                "blocks": copy.deepcopy(msg.blocks),
                "at": time.time(),
            }
        )
        self._record_text(f"chat.update {ts}", text, blocks)
        return {
            "channel": channel["id"],
            "ts": ts,
            "text": msg.text,
            "message": self._message_json(msg, ts),
        }

    def _api_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        user = args.get("user")
        if not user:
            raise _ApiError("user_not_found")
        text, blocks = self._content("chat.postEphemeral", args)
        ts = self._last_ts = _now_ts(self._last_ts)
        self._ephemerals.append(
            Ephemeral(
                channel=channel["id"],
                user=str(user),
                text=str(text or ""),
                blocks=copy.deepcopy(blocks) if isinstance(blocks, list) else [],
                message_ts=ts,
            )
        )
        self._record_text(f"chat.postEphemeral {ts}", text, blocks)
        return {"message_ts": ts}

    def _api_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger_id = args.get("trigger_id")
        if not trigger_id:
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]},
            )
        view = args.get("view")
        problems = _check_view(view)
        if problems:
            raise self._invalid("views.open", "invalid_arguments", problems)
        issued = self._triggers.get(str(trigger_id))
        if issued is None:
            raise _ApiError("invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise _ApiError("exchanged_trigger_id")
        if time.monotonic() - issued[0] > self.trigger_ttl:
            raise _ApiError("expired_trigger_id")
        self._used_triggers.add(str(trigger_id))
        assert isinstance(view, dict)
        answer = self._view_json(view)
        self._views.append(
            OpenedView(answer["id"], str(trigger_id), issued[1], answer, time.time())
        )
        return {"view": copy.deepcopy(answer)}

    def _api_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": dict(self._channel(args))}

    def _token_kind(self, token: str | None) -> str:
        if not token:
            return "none"
        if token == self.bot_token:
            return "bot"
        if token == self.app_token:
            return "app"
        return "invalid"

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        transport = "query"
        try:
            if request.method == "POST" and request.can_read_body:
                if request.content_type == "application/json":
                    body = await request.json()
                    if not isinstance(body, dict):
                        raise ValueError("JSON body is not an object")
                    args.update(body)
                    transport = "json"
                else:
                    form = await request.post()
                    args.update({k: v for k, v in form.items() if isinstance(v, str)})
                    transport = "form"
        except ValueError:
            return web.json_response({"ok": False, "error": "invalid_json"})
        auth = request.headers.get("Authorization", "")
        token: str | None = auth[7:].strip() if auth.startswith("Bearer ") else None
        body_token = args.pop("token", None)
        if token is None and transport != "json" and isinstance(body_token, str):
            token = body_token  # Slack takes a token parameter, but not inside JSON
        _parse_json_fields(args)
        kind = self._token_kind(token)
        headers: dict[str, str] = {}
        with self._cond:
            status = 200
            try:
                queue = self._failures.get(method)
                if queue:
                    failure = queue[0]
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        queue.popleft()
                    if failure.status == 429:
                        headers["Retry-After"] = str(failure.retry_after)
                    raise _ApiError(failure.error, status=failure.status)
                answer: dict[str, Any] = {"ok": True, **self._dispatch(method, kind, args)}
                error = None
            except _ApiError as exc:
                answer = {"ok": False, "error": exc.error, **exc.extra}
                error, status = exc.error, exc.status
            self._calls.append(SlackCall(method, kind, args, transport, error, time.time()))
            self._cond.notify_all()
        if kind == "bot":
            headers["X-OAuth-Scopes"] = "chat:write,chat:write.public,channels:read"
        log.debug("fake slack %s (%s) -> %s", method, kind, error or "ok")
        return web.json_response(answer, status=status, headers=headers)

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        try:
            body = await request.json()
        except ValueError:
            body = dict(await request.post())
        with self._cond:
            target = self._response_urls.get(key)
            if target is None or not isinstance(body, dict):
                return web.Response(status=404, text="no_such_response_url")
            envelope_id, ts = target
            self._responses.append(ResponseUrlPost(envelope_id, body, time.time()))
            msg = self._messages.get(ts) if ts is not None else None
            if msg is not None and body.get("delete_original"):
                msg.deleted = True
            elif msg is not None and body.get("replace_original"):
                msg.text = str(body.get("text", ""))
                msg.blocks = copy.deepcopy(body.get("blocks") or [])
                msg.updates.append(
                    {
                        "source": "response_url",
                        "text": msg.text,
                        "blocks": copy.deepcopy(msg.blocks),
                        "at": time.time(),
                    }
                )
            self._record_text(f"response_url {ts}", body.get("text"), body.get("blocks"))
            self._cond.notify_all()
        return web.Response(text="ok")

    # ------------------------------------------------------------------ internals: Socket Mode

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        with self._cond:
            known = request.query.get("ticket", "") in self._tickets
        if not known:
            return web.Response(status=401, text="invalid_ticket")
        ws = web.WebSocketResponse(autoping=True, compress=False, timeout=0.5)
        await ws.prepare(request)
        host = f"applink-fake-{secrets.token_hex(3)}"
        with self._cond:
            open_now = sum(1 for c in self._conns if c.usable)
            refused = open_now >= self.max_connections
            if refused:
                self._refused += 1
            else:
                self._opened += 1
                conn = _Conn(next(self._serial), ws, request.transport, time.monotonic())
                self._conns.append(conn)
        if refused:
            with contextlib.suppress(Exception):
                await ws.send_str(
                    json.dumps(
                        {
                            "type": "disconnect",
                            "reason": "too_many_websockets",
                            "debug_info": {"host": host},
                        }
                    )
                )
                await ws.close()
            return ws
        hello = {
            "type": "hello",
            "num_connections": open_now + 1,
            "debug_info": {"host": host, "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id},
        }
        try:
            await ws.send_str(json.dumps(hello))
            with self._cond:
                conn.ready = True
                self._cond.notify_all()
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_client_text(conn, msg.data)
        except Exception as exc:  # a dropped socket ends here; nothing to tell anyone
            log.debug("fake slack socket %d ended: %r", conn.serial, exc)
        finally:
            with self._cond:
                conn.closed = True
                self._cond.notify_all()
        return ws

    def _on_client_text(self, conn: _Conn, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            message = data
        with self._cond:
            envelope = (
                self._envelopes.get(message.get("envelope_id", ""))
                if isinstance(message, dict)
                else None
            )
            if envelope is None:
                self._client_messages.append(message)
            else:
                latency = time.monotonic() - envelope.sent_at[-1]
                self._acks.append(Ack(message["envelope_id"], message, latency, conn.serial))
            self._cond.notify_all()

    async def _send_text(self, envelope_id: str, via: int | None) -> None:
        with self._cond:
            targets = [c for c in self._conns if c.usable]
            if not targets:
                raise RuntimeError("no open Socket Mode connection to send the envelope on")
            if via is not None and not 0 <= via < len(targets):
                raise IndexError(
                    f"via={via}, but {len(targets)} Socket Mode connection(s) are open"
                )
            conn = targets[-1 if via is None else via]
            envelope = self._envelopes[envelope_id]
            envelope.sent_at.append(time.monotonic())
        await conn.ws.send_str(envelope.text)

    async def _disconnect(self, reason: str, delay: float | None, every: bool) -> None:
        with self._cond:
            targets = [c for c in self._conns if c.usable]
        if not targets:
            raise RuntimeError("no open Socket Mode connection to disconnect")
        if not every:
            targets = targets[-1:]
        for conn in targets:
            message = {
                "type": "disconnect",
                "reason": reason,
                "debug_info": {"host": "applink-fake"},
            }
            with contextlib.suppress(Exception):
                await conn.ws.send_str(json.dumps(message))
            if delay is not None:
                self._spawn(self._close_later(conn, delay))

    async def _close_later(self, conn: _Conn, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.ws.close(code=WSCloseCode.OK), 0.5)
        self._abort(conn)

    def _abort(self, conn: _Conn) -> None:
        if conn.transport is not None:
            conn.transport.abort()
        with self._cond:
            conn.closed = True
            self._cond.notify_all()

    async def _drop(self, silent: bool) -> None:
        with self._cond:
            targets = [c for c in self._conns if not c.closed]
        for conn in targets:
            if not silent:
                self._abort(conn)
                continue
            if conn.transport is not None:
                conn.transport.pause_reading()
            with self._cond:
                conn.closed = conn.silenced = True
                self._cond.notify_all()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ internals: server

    def _run_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> int:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_get("/link/", self._handle_ws)
        app.router.add_get("/link", self._handle_ws)
        app.router.add_post("/actions/{key:.+}", self._handle_response_url)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        port: int = runner.addresses[0][1]
        return port

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with self._cond:
            conns = [c for c in self._conns if not c.closed]
            for conn in self._conns:
                if conn.silenced and conn.transport is not None:
                    conn.transport.abort()

        async def close(conn: _Conn) -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.ws.close(code=WSCloseCode.GOING_AWAY), 0.1)
            self._abort(conn)

        await asyncio.gather(*(close(c) for c in conns))
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
