"""A stateful fake of the GPT Trainer API (a hosted chatbot service) served over real HTTP.

`FakeGPTTrainer` runs the shared loopback server (:mod:`tests.fakes.loopback`) on
127.0.0.1 at a random free port and keeps chatbots and sessions in memory::

    with FakeGPTTrainer() as fake:
        auth = {"Authorization": f"Bearer {fake.api_key}"}
        s = requests.post(f"{fake.base_url}/chatbot/{fake.chatbot_uuid}/session/create",
                          headers=auth, json={}).json()["uuid"]
        with requests.post(f"{fake.base_url}/session/{s}/message/stream", headers=auth,
                           json={"query": "Hi"}, stream=True) as r:
            text = b"".join(r.iter_content(chunk_size=None)).decode()
        assert fake.queries(s) == ["Hi"]

Endpoints (``base_url`` is ``http://127.0.0.1:PORT/api/v1``, as the real
``https://app.gpt-trainer.com/api/v1``):

* ``POST /chatbot/{chatbot_uuid}/session/create`` (body empty or a JSON object) ->
  ``{"uuid", "created_at", "modified_at"}`` (ISO 8601, UTC).
* ``POST /session/{session_uuid}/message/stream`` with ``{"query": "..."}`` -> 200,
  ``text/plain; charset=utf-8``, ``Transfer-Encoding: chunked``: the answer in chunks of
  ``chunk_size`` characters, ``chunk_delay`` seconds apart, after waiting ``delay``
  seconds (the response headers go out first, so a client read timeout shorter than
  ``delay`` fires while iterating the body, not in ``post()``). The session keeps its
  queries (the service holds the history itself): ``answer(query, session_uuid,
  earlier_queries)`` sees the earlier ones.
* ``GET /chatbot/{chatbot_uuid}`` -> ``{"uuid", "name", "created_at", "modified_at",
  "meta": {...}}``; ``GET /chatbot/{chatbot_uuid}/sessions`` -> list of sessions (not
  expired ones), oldest first.

Errors are JSON ``{"detail": message}``: a missing or wrong ``Authorization: Bearer``
key -> 401; unknown chatbot, unknown or expired session, unknown path -> 404; a known
path with another method -> 405; a stream body that is not a JSON object with a
non-empty string ``query`` -> 400 (and a line in ``errors``); the ``answer`` callable
raising -> 500 (and a line in ``errors``).

Order in which a request is processed: recorded in ``requests``; auth (401); the first
matching ``fail_next`` rule (answered without applying anything); routing (404/405);
the handler (state changes here: for a stream, the query is recorded in the session
before the answer is computed and sent, so it stays recorded when the stream is cut).

A cut stream (``cut_stream_next``): the first ``after_chars`` characters go out as
ordinary chunks, then the server closes the connection (a clean FIN) without the
terminating zero-length chunk. ``requests`` (2.34, urllib3 2.8) raises
``requests.exceptions.ChunkedEncodingError`` from ``iter_content`` (urllib3's
``ProtocolError("Response ended prematurely")``) after yielding the chunks that arrived.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self
from urllib.parse import urlsplit

from tests.fakes.loopback import JsonHandler, LoopbackServer

__all__ = ["DEFAULT_ANSWER", "FakeGPTTrainer", "RecordedRequest"]

log = logging.getLogger(__name__)

DEFAULT_ANSWER = "Thanks for your message! This is the fake GPT Trainer chatbot answering."
DEFAULT_CHATBOT_NAME = "Fake Chatbot"

AnswerFn = Callable[[str, str, list[str]], str]

_CREATE_RE = re.compile(r"^/api/v1/chatbot/([^/]+)/session/create$")
_STREAM_RE = re.compile(r"^/api/v1/session/([^/]+)/message/stream$")
_CHATBOT_RE = re.compile(r"^/api/v1/chatbot/([^/]+)$")
_SESSIONS_RE = re.compile(r"^/api/v1/chatbot/([^/]+)/sessions$")
_ROUTES: tuple[tuple[re.Pattern[str], str], ...] = (
    (_CREATE_RE, "POST"),
    (_STREAM_RE, "POST"),
    (_CHATBOT_RE, "GET"),
    (_SESSIONS_RE, "GET"),
)


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the query string, e.g. "/api/v1/session/<uuid>/message/stream"
    headers: dict[str, str]  # names normalised to Title-Case ("Authorization")
    json: Any  # parsed body, None when there is none (or it is not JSON)
    at: float  # time.time() when received
    status: int = 0  # the status answered; 0 until decided
    sent: str | None = None  # stream only: the answer text actually sent (cut: a prefix)
    cut: bool = False  # stream only: the connection was closed mid-body on purpose


@dataclass
class _Rule:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int


@dataclass
class _Session:
    uuid: str
    chatbot_uuid: str
    created_at: str
    modified_at: str
    expired: bool = False


@dataclass
class _Chatbot:
    uuid: str
    name: str
    created_at: str
    modified_at: str
    meta: dict[str, Any] = field(default_factory=dict)


class _Error(Exception):
    def __init__(self, status: int, detail: str, *, record: bool = False) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.record = record


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _title_case(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def _default_meta() -> dict[str, Any]:
    return {
        "visibility": "private",
        "rate_limit": [20, 240],
        "rate_limit_message": "Too many messages",
        "show_citations": False,
    }


def _default_answer(query: str, session_uuid: str, earlier: list[str]) -> str:
    return DEFAULT_ANSWER


class _Handler(JsonHandler["FakeGPTTrainer"]):
    def dispatch(self) -> None:
        self.server.fake._serve(self)

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode("ascii") + data + b"\r\n")
        self.wfile.flush()


class FakeGPTTrainer(LoopbackServer):
    """GPT Trainer on 127.0.0.1. Use as a context manager or start()/stop().

    Attributes meant to be set by tests: ``answer`` (``(query, session_uuid,
    earlier_queries) -> text``), ``delay`` (seconds before the first chunk),
    ``chunk_delay`` and ``chunk_size``. Read ``sessions``/``requests`` under ``lock``, or
    use :meth:`queries`, :meth:`session_ids` and :meth:`calls`.
    """

    handler_class = _Handler
    thread_label = "FakeGPTTrainer"
    url_suffix = "/api/v1"

    def __init__(
        self,
        api_key: str = "gt-key-0123456789",
        chatbot_uuid: str = "chatbot-0001",
        chunk_delay: float = 0.01,
        chunk_size: int = 8,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be at least 1")
        self.api_key = api_key
        self.chatbot_uuid = chatbot_uuid
        self.chunk_delay = chunk_delay
        self.chunk_size = chunk_size
        self._initial_chunking = (chunk_delay, chunk_size)
        self.delay = 0.0
        self.answer: AnswerFn = _default_answer
        self.lock = threading.RLock()
        self.sessions: dict[str, list[str]] = {}
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []
        self._session_info: dict[str, _Session] = {}
        self._chatbots: dict[str, _Chatbot] = {}
        self._rules: list[_Rule] = []
        self._cuts: deque[int] = deque()
        self._stopping = threading.Event()
        self.add_chatbot(chatbot_uuid)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        self._stopping.clear()
        return super().start()

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in delay / chunk_delay
        super().stop()

    # ------------------------------------------------------------------ setup

    def add_chatbot(self, uuid: str, name: str = DEFAULT_CHATBOT_NAME) -> dict[str, Any]:
        """Add (or replace) a chatbot; returns it as ``GET /chatbot/{uuid}`` shows it."""
        now = _now_iso()
        bot = _Chatbot(uuid, name, now, now, _default_meta())
        with self.lock:
            self._chatbots[uuid] = bot
            return self._render_chatbot(bot)

    def set_answer(self, text: str) -> None:
        """Every answer is ``text`` from now on."""
        self.answer = lambda query, session_uuid, earlier: text

    def expire_session(self, session_uuid: str) -> None:
        """The session answers 404 from now on (and leaves the sessions list)."""
        with self.lock:
            if session_uuid not in self._session_info:
                raise KeyError(session_uuid)
            self._session_info[session_uuid].expired = True

    def fail_next(self, method: str, path_regex: str, status: int, *, times: int = 1) -> None:
        """The next ``times`` authorised requests matching get ``status`` with a JSON
        ``{"detail": ...}`` body; nothing is applied (no session created, no query kept).

        ``method`` is an HTTP method or ``"*"``; ``path_regex`` is matched with
        ``re.search`` against the full path (``/api/v1/...``, no query string).
        """
        if times < 1:
            raise ValueError("times must be at least 1")
        rule = _Rule(method.upper(), re.compile(path_regex), status, times)
        with self.lock:
            self._rules.append(rule)

    def cut_stream_next(self, after_chars: int, *, times: int = 1) -> None:
        """The next ``times`` successful message streams send the first ``after_chars``
        characters of the answer, then close the connection without the terminating
        zero-length chunk. The query is still recorded in the session."""
        if times < 1:
            raise ValueError("times must be at least 1")
        if after_chars < 0:
            raise ValueError("after_chars must not be negative")
        with self.lock:
            self._cuts.extend([after_chars] * times)

    def reset(self) -> None:
        """Forget sessions, requests, errors, queued failures and extra chatbots; restore
        ``answer``, ``delay``, ``chunk_delay`` and ``chunk_size``. Keeps the server running."""
        with self.lock:
            self.answer = _default_answer
            self.delay = 0.0
            self.chunk_delay, self.chunk_size = self._initial_chunking
            self.sessions.clear()
            self._session_info.clear()
            self.requests.clear()
            self.errors.clear()
            self._rules.clear()
            self._cuts.clear()
            self._chatbots.clear()
            self.add_chatbot(self.chatbot_uuid)

    # ------------------------------------------------------------------ inspection

    def queries(self, session_uuid: str) -> list[str]:
        """The queries the session received, in order (a copy)."""
        with self.lock:
            return list(self.sessions[session_uuid])

    def session_ids(self) -> list[str]:
        """Every session ever created (expired ones included), in creation order."""
        with self.lock:
            return list(self.sessions)

    def calls(
        self, method: str | None = None, path_regex: str | None = None
    ) -> list[RecordedRequest]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path_regex is None or re.search(path_regex, r.path))
            ]

    # ------------------------------------------------------------------ HTTP plumbing

    def _serve(self, handler: _Handler) -> None:
        method = handler.command.upper()
        path = urlsplit(handler.path).path
        headers = {_title_case(k): v for k, v in handler.headers.items()}
        try:
            raw = handler.read_body()
        except (ValueError, OSError):
            handler.close_connection = True
            raw = b""
        parsed: Any = None
        if raw:
            with contextlib.suppress(ValueError):
                parsed = json.loads(raw)
        recorded = RecordedRequest(method, path, headers, parsed, time.time())
        with self.lock:
            self.requests.append(recorded)
        try:
            self._process(handler, recorded, raw)
        except _Error as exc:
            if exc.record:
                with self.lock:
                    self.errors.append(f"{method} {path}: {exc.detail}")
            recorded.status = exc.status
            handler.send_json(exc.status, {"detail": exc.detail})

    def _process(self, handler: _Handler, req: RecordedRequest, raw: bytes) -> None:
        scheme, _, key = req.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.api_key:
            raise _Error(401, "Invalid or missing API key.")
        failure = self._take_rule(req.method, req.path)
        if failure is not None:
            raise _Error(failure.status, "fake failure")

        for pattern, allowed in _ROUTES:
            match = pattern.match(req.path)
            if match is None:
                continue
            if req.method != allowed:
                raise _Error(405, "Method Not Allowed")
            target = match.group(1)
            if pattern is _STREAM_RE:
                self._stream(handler, req, target, raw)
                return
            if pattern is _CREATE_RE:
                payload: Any = self._create_session(target, req, raw)
            elif pattern is _CHATBOT_RE:
                payload = self._get_chatbot(target)
            else:
                payload = self._list_sessions(target)
            req.status = 200
            handler.send_json(200, payload)
            return
        raise _Error(404, "Not Found")

    def _take_rule(self, method: str, path: str) -> _Rule | None:
        with self.lock:
            for rule in self._rules:
                if rule.method in (method, "*") and rule.pattern.search(path):
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    # ------------------------------------------------------------------ routes

    def _require_chatbot(self, chatbot_uuid: str) -> _Chatbot:
        bot = self._chatbots.get(chatbot_uuid)
        if bot is None:
            raise _Error(404, "Chatbot not found.")
        return bot

    def _create_session(self, chatbot_uuid: str, req: RecordedRequest, raw: bytes) -> Any:
        if raw.strip() and not isinstance(req.json, dict):
            raise _Error(400, "Request body must be a JSON object.", record=True)
        now = _now_iso()
        with self.lock:
            self._require_chatbot(chatbot_uuid)
            session = _Session(str(uuid.uuid4()), chatbot_uuid, now, now)
            self._session_info[session.uuid] = session
            self.sessions[session.uuid] = []
            return self._render_session(session)

    def _get_chatbot(self, chatbot_uuid: str) -> Any:
        with self.lock:
            return self._render_chatbot(self._require_chatbot(chatbot_uuid))

    def _list_sessions(self, chatbot_uuid: str) -> Any:
        with self.lock:
            self._require_chatbot(chatbot_uuid)
            return [
                self._render_session(s)
                for s in self._session_info.values()
                if s.chatbot_uuid == chatbot_uuid and not s.expired
            ]

    def _stream(
        self, handler: _Handler, req: RecordedRequest, session_uuid: str, raw: bytes
    ) -> None:
        body = req.json
        query = body.get("query") if isinstance(body, dict) else None
        if not isinstance(query, str) or not query.strip():
            raise _Error(400, 'Body must be a JSON object with a non-empty "query".', record=True)
        with self.lock:
            session = self._session_info.get(session_uuid)
            if session is None or session.expired:
                raise _Error(404, "Session not found.")
            earlier = list(self.sessions[session_uuid])
            self.sessions[session_uuid].append(query)
            session.modified_at = _now_iso()
            cut = self._cuts.popleft() if self._cuts else None
            answer_fn, delay = self.answer, self.delay
            chunk_size, chunk_delay = self.chunk_size, self.chunk_delay
        try:
            text = answer_fn(query, session_uuid, earlier)
        except Exception as exc:
            log.exception("FakeGPTTrainer: the answer callable raised")
            raise _Error(500, f"answer callable raised {exc!r}", record=True) from exc

        sent = text if cut is None else text[:cut]
        req.status = 200
        req.sent = sent
        req.cut = cut is not None
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/plain; charset=utf-8")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            handler.wfile.flush()
            if delay > 0 and self._stopping.wait(delay):
                handler.close_connection = True
                return
            for i in range(0, len(sent), chunk_size):
                if i and chunk_delay > 0 and self._stopping.wait(chunk_delay):
                    handler.close_connection = True
                    return
                handler.write_chunk(sent[i : i + chunk_size].encode("utf-8"))
            if cut is not None:
                handler.close_connection = True  # no "0\r\n\r\n": the body is truncated
                return
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True

    # ------------------------------------------------------------------ rendering

    @staticmethod
    def _render_session(session: _Session) -> dict[str, Any]:
        return {
            "uuid": session.uuid,
            "created_at": session.created_at,
            "modified_at": session.modified_at,
        }

    @staticmethod
    def _render_chatbot(bot: _Chatbot) -> dict[str, Any]:
        return {
            "uuid": bot.uuid,
            "name": bot.name,
            "created_at": bot.created_at,
            "modified_at": bot.modified_at,
            "meta": json.loads(json.dumps(bot.meta)),
        }
