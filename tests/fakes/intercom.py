"""A stateful fake of Intercom's REST API (version 2.16) served over real HTTP.

`FakeIntercom` runs a `ThreadingHTTPServer` on 127.0.0.1 (random free port) and keeps
admins and conversations in memory. Every request it receives is validated against
Intercom's official OpenAPI description (`tests/contracts/intercom-openapi-2.16.yaml`)
with openapi-core; a request that does not validate is answered with a 400 error.list
and its message is appended to `fake.validation_errors`, which tests assert stays empty.
Requests that are well-formed per the spec but that Intercom would still reject (e.g.
`per_page` above 150, an unknown search field, a reply without a body, a bad cursor)
are treated the same way.

Implemented: `GET /me`, `GET /admins`, `GET /admins/{id}`, `POST /conversations/search`,
`GET /conversations/{id}`, `PUT /conversations/{id}` (`read`),
`POST /conversations/{id}/reply`, `POST /conversations/{id}/parts`. Anything else: 404.

Order in which a request is processed: recorded in `requests`; auth (401); rate limit
(429, counted per `rate_window`, or forced by `rate_limit_next`); OpenAPI validation
(400, or 404 for a route the spec does not have); `fail_next` (answered without being
applied); the handler (state changes here); `on_applied` (successful writes only);
`apply_then_fail` / `apply_then_hang`; the response is sent.

What the description itself decides (so the fake does too, although Intercom's prose
may be more lenient): a search group whose `value` mixes filters and sub-groups fits
neither branch of `multiple_filter_search_request.value`'s oneOf and is refused (use
IN/NIN, or groups of groups); a filter `value` of null is refused; the `Intercom-Version`
header must be one of the listed versions. Request bodies are not marked `required` in
the description, so a missing body passes openapi-core and is refused by the handler.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import hashlib
import json
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import PathError
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.fakes.loopback import JsonHandler, LoopbackServer

__all__ = ["SPEC_PATH", "FakeIntercom", "RecordedRequest", "load_spec"]

# Vendored into the repository (see tests/contracts/README.md for source and licence);
# INTERCOM_OPENAPI_SPEC points the fake at another copy, e.g. a newer description.
SPEC_PATH = Path(
    os.environ.get(
        "INTERCOM_OPENAPI_SPEC",
        Path(__file__).resolve().parents[1] / "contracts" / "intercom-openapi-2.16.yaml",
    )
)

# openapi-core finds the operation by matching the full URL against the spec's
# `servers` (https://api.intercom.io and the EU/AU hosts), so the adapter presents every
# request as if it had been sent to the production host instead of 127.0.0.1:PORT.
_SPEC_HOST_URL = "https://api.intercom.io"

CUSTOMER_AUTHOR_TYPES = frozenset({"user", "lead", "contact"})
TEAMMATE_AUTHOR_TYPES = frozenset({"admin", "bot", "team"})
COMMENT_PART_TYPES = frozenset({"comment", "quick_reply"})
STATES = ("open", "closed", "snoozed")
MAX_PARTS_RETURNED = 500
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 150
MAX_FILTERS_PER_GROUP = 15
MAX_NESTING = 2

_DEFAULT_ADMIN = {"id": "1", "name": "Fake Admin", "email": "admin@example.com"}
_ERROR_CODES = {
    400: "parameter_invalid",
    401: "unauthorized",
    403: "api_plan_restricted",
    404: "not_found",
    409: "conflict",
    422: "parameter_invalid",
    429: "rate_limit_exceeded",
    503: "service_unavailable",
}
_WRITE_ROUTES = (
    ("POST", re.compile(r"/conversations/[^/]+/(reply|parts)")),
    ("PUT", re.compile(r"/conversations/[^/]+")),
)
_VALIDATION_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def load_spec(path: str = str(SPEC_PATH)) -> OpenAPI:
    """The parsed OpenAPI description, loaded once per process (it takes ~1 s).

    `spec_validator_cls=None`: the description itself does not pass openapi-spec-validator
    (an error in a part unrelated to what the fake serves), so checking it is switched off.
    """
    return OpenAPI.from_file_path(path, config=Config(spec_validator_cls=None))


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names normalised to Title-Case ("Intercom-Version")
    json: Any  # parsed body or None
    at: float  # time.time() when received
    status: int = 0  # the status that was (or is being) answered; 0 until decided
    request_id: str = ""


@dataclass
class _Rule:
    kind: str  # "fail" | "apply_fail" | "apply_hang"
    method: str
    pattern: re.Pattern[str]
    times: int
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    seconds: float = 0.0


@dataclass
class _Conversation:
    id: str
    created_at: int
    updated_at: int
    source: dict[str, Any]
    customer: dict[str, Any]  # {"type", "id", "name", "email"}
    state: str
    admin_assignee_id: int
    team_assignee_id: int
    read: bool
    snoozed_until: int | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Reply:
    status: int
    body: Any  # JSON-serialisable, or str/bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)


class _ClientError(Exception):
    """A request Intercom would refuse. `invalid` ones are client bugs: recorded."""

    def __init__(self, status: int, code: str, message: str, *, invalid: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.invalid = invalid


def _invalid(message: str) -> _ClientError:
    return _ClientError(400, "parameter_invalid", message, invalid=True)


def _not_found(message: str = "Resource Not Found") -> _ClientError:
    return _ClientError(404, "not_found", message)


def _error_body(request_id: str, code: str, message: str) -> dict[str, Any]:
    return {
        "type": "error.list",
        "request_id": request_id,
        "errors": [{"code": code, "message": message}],
    }


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _title_case(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


class _OpenAPIRequest:
    """The request protocol openapi-core validates (`openapi_core.protocols.Request`)."""

    def __init__(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes | None,
    ) -> None:
        self.host_url = _SPEC_HOST_URL
        self.path = path
        self.method = method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query),
            header=Headers(list(headers.items())),
            cookie=ImmutableMultiDict(),
            path={},  # openapi-core fills this in from the matched path template
        )
        self.content_type = (headers.get("Content-Type") or "application/json").lower()
        self.body = body or None


def _schema_error_text(error: Any, depth: int = 0) -> str:
    location = "/".join(str(p) for p in error.absolute_path) or "<body>"
    text = f"{location}: {error.message}"
    if len(text) > 300:
        text = text[:297] + "..."
    context = list(getattr(error, "context", None) or [])
    if context and depth < 2:  # oneOf/anyOf: say why each alternative failed
        inner = "; ".join(_schema_error_text(sub, depth + 1) for sub in context[:8])
        text += f" [{inner}]"
    return text


def _describe_validation_error(exc: BaseException) -> str:
    cause = exc.__cause__
    schema_errors = getattr(cause, "schema_errors", None)
    if schema_errors:
        # str(exc) would repeat the whole request body; name the failing parts instead.
        head = "Request body" if type(exc).__name__ == "InvalidRequestBody" else str(exc)
        return f"{head}: " + "; ".join(_schema_error_text(e) for e in schema_errors)
    if cause is not None and str(cause) not in str(exc):
        return f"{exc}: {cause}"
    return str(exc)


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise _invalid(f"{what}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise _invalid(f"{what}: expected an integer, got {value!r}")


def _as_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _invalid(f"{what}: expected a boolean, got {value!r}")


_DATE_OPS = frozenset({"=", "<", ">"})
_NUMBER_OPS = frozenset({"=", "!=", "IN", "NIN", "<", ">"})
_STRING_OPS = frozenset({"=", "!=", "IN", "NIN", "~", "!~", "^", "$"})
_BOOL_OPS = frozenset({"=", "!="})


def _search_fields(
    waiting_since: Callable[[_Conversation], int | None],
) -> dict[str, tuple[str, Callable[[_Conversation], Any]]]:
    """Searchable field -> (kind, getter); the kind decides the operators allowed."""
    return {
        "id": ("string", lambda c: c.id),
        "created_at": ("date", lambda c: c.created_at),
        "updated_at": ("date", lambda c: c.updated_at),
        "waiting_since": ("date", waiting_since),
        "snoozed_until": ("date", lambda c: c.snoozed_until),
        "state": ("string", lambda c: c.state),
        "open": ("boolean", lambda c: c.state != "closed"),
        "read": ("boolean", lambda c: c.read),
        "admin_assignee_id": ("integer", lambda c: c.admin_assignee_id),
        "team_assignee_id": ("integer", lambda c: c.team_assignee_id),
        "contact_ids": ("strings", lambda c: [c.customer["id"]]),
        "source.author.id": ("string", lambda c: c.source["author"]["id"]),
        "source.author.type": ("string", lambda c: c.source["author"]["type"]),
        "source.delivered_as": ("string", lambda c: c.source["delivered_as"]),
        "priority": ("string", lambda c: "none"),
    }


class _Handler(JsonHandler["FakeIntercom"]):
    def dispatch(self) -> None:
        self.server.fake._serve(self)

    def send_reply(self, reply: _Reply) -> None:
        body = reply.body
        headers = dict(reply.headers)
        if isinstance(body, bytes | str):
            data = body.encode() if isinstance(body, str) else body
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        else:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        self.send_bytes(reply.status, data, headers.items())


class FakeIntercom(LoopbackServer):
    """A stateful Intercom API on 127.0.0.1. Use as a context manager or start()/stop().

    The server plumbing comes from :class:`~tests.fakes.loopback.LoopbackServer`, except
    that `base_url` is "" until the first start() and a second start() is a no-op.
    """

    handler_class = _Handler
    thread_label = "FakeIntercom"

    def __init__(
        self,
        token: str = "test-token",
        *,
        validate: bool = True,
        clock: Callable[[], float] = time.time,
        rate_limit: int = 10000,
        rate_window: float = 10.0,
    ) -> None:
        self.token = token
        self.validate = validate
        self.clock = clock
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.requests: list[RecordedRequest] = []
        self.validation_errors: list[str] = []
        self.on_applied: Callable[[RecordedRequest], None] | None = None
        self._lock = threading.RLock()
        self._admins: dict[str, dict[str, Any]] = {}
        self._conversations: dict[str, _Conversation] = {}
        self._next_conversation_id = 1001
        self._next_part_id = 5_000_001
        self._next_contact = 1
        self._rules: list[_Rule] = []
        self._forced_429: list[float] = []  # reset_in of each pending rate_limit_next
        self._window_start: float | None = None
        self._window_count = 0
        self._stopping = threading.Event()
        self._waiting_hidden: set[str] = set()
        self._fields = _search_fields(self._waiting_since)
        if validate:
            load_spec()

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; "" until started, kept after stop()."""
        return self._base_url or ""

    def start(self) -> Self:
        if self._server is None:
            self._stopping.clear()
            super().start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._stopping.set()  # wakes handlers sleeping in apply_then_hang
        super().stop()

    # ------------------------------------------------------------------ inspection

    def calls(
        self, method: str | None = None, path_prefix: str | None = None
    ) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path_prefix is None or r.path.startswith(path_prefix))
            ]

    def conversation(self, conversation_id: str) -> dict[str, Any]:
        """The conversation as GET would show it, but with all of its parts."""
        with self._lock:
            return self._render(self._get_conversation(conversation_id), parts_limit=None)

    def parts(
        self, conversation_id: str, *, author_id: str | None = None, part_type: str | None = None
    ) -> list[dict[str, Any]]:
        with self._lock:
            conv = self._get_conversation(conversation_id)
            return [
                copy.deepcopy(p)
                for p in conv.parts
                if (author_id is None or p["author"]["id"] == str(author_id))
                and (part_type is None or p["part_type"] == part_type)
            ]

    # ------------------------------------------------------------------ data setup

    def add_admin(self, admin_id: str, name: str = "Admin", email: str | None = None) -> None:
        admin_id = str(admin_id)
        with self._lock:
            self._admins[admin_id] = {
                "id": admin_id,
                "name": name,
                "email": email or f"admin{admin_id}@example.com",
            }

    def create_conversation(
        self,
        body: str,
        *,
        author_type: str = "user",
        customer_id: str | None = None,
        customer_name: str = "Customer",
        created_at: int | None = None,
        conversation_id: str | None = None,
        state: str = "open",
        admin_assignee_id: int = 0,
        team_assignee_id: int = 0,
    ) -> str:
        """A new conversation whose source (first message) is `body`; returns its id.

        The customer (`customer_id`, a generated contact id by default) is the
        conversation's contact. With `author_type` user/lead/contact the customer wrote
        the first message; with admin/bot the source author is the `/me` admin.
        """
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, not {state!r}")
        with self._lock:
            if conversation_id is None:
                conversation_id = str(self._next_conversation_id)
            conversation_id = str(conversation_id)
            if not conversation_id.isdigit():
                raise ValueError(f"conversation ids are numeric strings, not {conversation_id!r}")
            if conversation_id in self._conversations:
                raise ValueError(f"conversation {conversation_id} already exists")
            self._next_conversation_id = max(self._next_conversation_id, int(conversation_id) + 1)
            if customer_id is None:
                customer_id = f"6762f1261bb69f9f{self._next_contact:08x}"
                self._next_contact += 1
            customer = {
                "type": author_type if author_type in CUSTOMER_AUTHOR_TYPES else "user",
                "id": str(customer_id),
                "name": customer_name,
                "email": f"{customer_id}@customers.example.com",
            }
            if author_type in CUSTOMER_AUTHOR_TYPES:
                author = {**customer, "type": author_type}
                delivered_as = "customer_initiated"
            else:
                me = self._me()
                author = {
                    "type": author_type,
                    "id": me["id"],
                    "name": me["name"],
                    "email": me["email"],
                }
                delivered_as = "admin_initiated" if author_type == "admin" else "automated"
            now = self._now() if created_at is None else int(created_at)
            conv = _Conversation(
                id=conversation_id,
                created_at=now,
                updated_at=now,
                source={
                    "type": "conversation",
                    "id": self._new_part_id(),
                    "delivered_as": delivered_as,
                    "subject": "",
                    "body": body,
                    "author": author,
                    "attachments": [],
                    "url": None,
                    "redacted": False,
                },
                customer=customer,
                state=state,
                admin_assignee_id=int(admin_assignee_id),
                team_assignee_id=int(team_assignee_id),
                read=author_type not in CUSTOMER_AUTHOR_TYPES,
            )
            self._conversations[conversation_id] = conv
            return conversation_id

    def add_part(
        self,
        conversation_id: str,
        body: str | None,
        *,
        author_type: str,
        author_id: str,
        part_type: str = "comment",
        created_at: int | None = None,
        author_name: str = "",
    ) -> str:
        """Appends a part as it is (no reopening, no `read` change); returns its id."""
        with self._lock:
            conv = self._get_conversation(conversation_id)
            part = self._append_part(
                conv,
                part_type=part_type,
                body=body,
                author=self._author(conv, author_type, str(author_id), author_name),
                created_at=created_at,
            )
            return str(part["id"])

    def customer_writes(
        self, conversation_id: str, body: str, *, created_at: int | None = None
    ) -> str:
        """The conversation's customer sends a message: reopens it and marks it unread."""
        with self._lock:
            conv = self._get_conversation(conversation_id)
            part = self._customer_comment(conv, body, conv.customer["id"], created_at)
            return str(part["id"])

    def admin_writes(
        self,
        conversation_id: str,
        admin_id: str,
        body: str,
        *,
        part_type: str = "comment",
        created_at: int | None = None,
    ) -> str:
        with self._lock:
            conv = self._get_conversation(conversation_id)
            part = self._append_part(
                conv,
                part_type=part_type,
                body=body,
                author=self._author(conv, "admin", str(admin_id), ""),
                created_at=created_at,
            )
            return str(part["id"])

    def hide_waiting_since(self, conversation_id: str) -> None:
        """From now on `waiting_since` is null for this conversation (GET, search results and
        search filters), whoever wrote last: Intercom does not promise it is always set."""
        with self._lock:
            self._waiting_hidden.add(self._get_conversation(conversation_id).id)

    def set_state(self, conversation_id: str, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, not {state!r}")
        with self._lock:
            conv = self._get_conversation(conversation_id)
            conv.state = state
            if state != "snoozed":
                conv.snoozed_until = None
            self._touch(conv)

    # ------------------------------------------------------------------ fault injection

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """The next `times` matching requests get `status` and are NOT applied.

        `method` is an HTTP method or "*"; `path_regex` is matched with `re.search`
        against the path (no query string): anchor it (`^...$`) to be exact. `body`:
        None for an Intercom error.list, str/bytes sent as text, anything else as JSON.
        """
        self._add_rule(
            _Rule("fail", method, re.compile(path_regex), times, status, dict(headers or {}), body)
        )

    def apply_then_fail(self, method: str, path_regex: str, status: int, *, times: int = 1) -> None:
        """The next `times` matching requests are handled (state changes) but answered `status`."""
        self._add_rule(_Rule("apply_fail", method, re.compile(path_regex), times, status))

    def apply_then_hang(
        self, method: str, path_regex: str, seconds: float, *, times: int = 1
    ) -> None:
        """The next `times` matching requests are handled, then answered after `seconds`."""
        self._add_rule(_Rule("apply_hang", method, re.compile(path_regex), times, seconds=seconds))

    def rate_limit_next(self, *, reset_in: float = 1.0, times: int = 1) -> None:
        with self._lock:
            self._forced_429.extend([reset_in] * times)

    def _add_rule(self, rule: _Rule) -> None:
        if rule.times < 1:
            raise ValueError("times must be at least 1")
        rule.method = rule.method.upper()
        with self._lock:
            self._rules.append(rule)

    def _take_rule(self, kinds: tuple[str, ...], method: str, path: str) -> _Rule | None:
        with self._lock:
            for rule in self._rules:
                if (
                    rule.kind in kinds
                    and rule.method in (method, "*")
                    and rule.pattern.search(path)
                ):
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
                    return rule
        return None

    # ------------------------------------------------------------------ HTTP plumbing

    def _serve(self, handler: _Handler) -> None:
        request_id = str(uuid.uuid4())
        method = handler.command.upper()
        split = urlsplit(handler.path)
        path = split.path
        query_pairs = parse_qsl(split.query, keep_blank_values=True)
        raw_headers = {_title_case(k): v for k, v in handler.headers.items()}
        if raw_headers.get("Transfer-Encoding", "").lower() == "chunked":
            # Real clients (requests with json=) send Content-Length; keep the fake simple.
            handler.close_connection = True
            handler.send_reply(
                _Reply(411, _error_body(request_id, "parameter_invalid", "Length Required"))
            )
            return
        raw_body = handler.read_body()
        parsed: Any = None
        body_error: str | None = None
        if raw_body:
            try:
                parsed = json.loads(raw_body)
            except ValueError as exc:
                body_error = f"Request body is not valid JSON: {exc}"
        recorded = RecordedRequest(
            method=method,
            path=path,
            query=dict(query_pairs),
            headers=raw_headers,
            json=parsed,
            at=time.time(),
            request_id=request_id,
        )
        with self._lock:
            self.requests.append(recorded)

        reply, handled, applied = self._process(recorded, query_pairs, raw_body, body_error)
        recorded.status = reply.status
        if applied and self.on_applied is not None:
            self.on_applied(recorded)
        after = self._take_rule(("apply_fail", "apply_hang"), method, path) if handled else None
        if after is not None and after.kind == "apply_fail":
            phrase = _phrase(after.status)
            reply = _Reply(
                after.status,
                _error_body(request_id, self._code_for(after.status), phrase),
                reply.headers,
            )
            recorded.status = reply.status
        elif after is not None:
            self._stopping.wait(after.seconds)
        handler.send_reply(reply)

    def _process(
        self,
        recorded: RecordedRequest,
        query_pairs: list[tuple[str, str]],
        raw_body: bytes,
        body_error: str | None,
    ) -> tuple[_Reply, bool, bool]:
        """(reply, handled, applied): `handled` if a route handler ran (state may have
        changed), `applied` if it was a successful write."""
        rid = recorded.request_id
        auth = recorded.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            reply = _Reply(
                401, _error_body(rid, "unauthorized", "Access Token Invalid"), self._rate_headers()
            )
            return reply, False, False

        rate_headers, limited = self._count_request()
        if limited:
            return (
                _Reply(
                    429,
                    _error_body(rid, "rate_limit_exceeded", "Rate Limit Exceeded"),
                    rate_headers,
                ),
                False,
                False,
            )

        def error(exc: _ClientError, handled: bool = False) -> tuple[_Reply, bool, bool]:
            if exc.invalid:
                with self._lock:
                    self.validation_errors.append(
                        f"{recorded.method} {recorded.path}: {exc.message}"
                    )
            return (
                _Reply(exc.status, _error_body(rid, exc.code, exc.message), rate_headers),
                handled,
                False,
            )

        if self.validate:
            problem = self._validate(recorded, query_pairs, raw_body)
            if problem is not None:
                return error(problem)
        if body_error is not None:
            return error(_invalid(body_error))

        rule = self._take_rule(("fail",), recorded.method, recorded.path)
        if rule is not None:
            body = rule.body
            if body is None:
                body = _error_body(rid, self._code_for(rule.status), _phrase(rule.status))
            return _Reply(rule.status, body, {**rate_headers, **rule.headers}), False, False

        try:
            with self._lock:
                status, payload = self._route(recorded)
        except _ClientError as exc:
            return error(exc, handled=True)
        is_write = any(
            m == recorded.method and p.fullmatch(recorded.path) for m, p in _WRITE_ROUTES
        )
        return _Reply(status, payload, rate_headers), True, is_write

    def _validate(
        self, recorded: RecordedRequest, query_pairs: list[tuple[str, str]], raw_body: bytes
    ) -> _ClientError | None:
        request = _OpenAPIRequest(
            recorded.method, recorded.path, query_pairs, recorded.headers, raw_body
        )
        # openapi-core keeps caches inside the shared spec object; serialise to be safe.
        with _VALIDATION_LOCK:
            errors = list(load_spec().iter_request_errors(request))
        if not errors:
            return None
        if any(isinstance(e, PathError) for e in errors):
            # A route the spec does not have: Intercom answers 404; still a client bug.
            message = f"no operation {recorded.method} {recorded.path} in the OpenAPI description"
            return _ClientError(404, "not_found", message, invalid=True)
        return _invalid("; ".join(_describe_validation_error(e) for e in errors))

    @staticmethod
    def _code_for(status: int) -> str:
        return _ERROR_CODES.get(status, "server_error" if status >= 500 else "client_error")

    def _count_request(self) -> tuple[dict[str, str], bool]:
        """Counts one authenticated request; (rate-limit headers, whether to answer 429)."""
        with self._lock:
            now = self.clock()
            if self._window_start is None or now >= self._window_start + self.rate_window:
                self._window_start, self._window_count = now, 0
            self._window_count += 1
            if self._forced_429:
                reset_in = self._forced_429.pop(0)
                headers = {
                    "X-RateLimit-Limit": str(self.rate_limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(math.ceil(now + reset_in)),
                }
                return headers, True
            return self._rate_headers(), self._window_count > self.rate_limit

    def _rate_headers(self) -> dict[str, str]:
        """The fixed window's state: it starts at the first request after the previous ended."""
        with self._lock:
            now = self.clock()
            if self._window_start is None or now >= self._window_start + self.rate_window:
                used, reset = 0, now + self.rate_window
            else:
                used, reset = self._window_count, self._window_start + self.rate_window
            return {
                "X-RateLimit-Limit": str(self.rate_limit),
                "X-RateLimit-Remaining": str(max(0, self.rate_limit - used)),
                "X-RateLimit-Reset": str(math.ceil(reset)),
            }

    # ------------------------------------------------------------------ routes (lock held)

    def _route(self, req: RecordedRequest) -> tuple[int, Any]:
        m, p = req.method, req.path
        if m == "GET" and p == "/me":
            return 200, self._render_me()
        if m == "GET" and p == "/admins":
            return 200, {
                "type": "admin.list",
                "admins": [self._render_admin(a) for a in self._admin_table().values()],
            }
        if m == "GET" and (match := re.fullmatch(r"/admins/([^/]+)", p)):
            admin = self._admin_table().get(match.group(1))
            if admin is None:
                raise _ClientError(404, "admin_not_found", "Admin not found")
            return 200, self._render_admin(admin)
        if m == "POST" and p == "/conversations/search":
            return 200, self._search(req.json)
        if match := re.fullmatch(r"/conversations/([^/]+)", p):
            if m == "GET":
                return 200, self._render(self._find(match.group(1)))
            if m == "PUT":
                return 200, self._update(self._find(match.group(1)), req.json)
        if m == "POST" and (match := re.fullmatch(r"/conversations/([^/]+)/reply", p)):
            return 200, self._reply(self._find(match.group(1)), req.json)
        if m == "POST" and (match := re.fullmatch(r"/conversations/([^/]+)/parts", p)):
            return 200, self._manage(self._find(match.group(1)), req.json)
        raise _not_found()

    def _find(self, conversation_id: str) -> _Conversation:
        conv = self._conversations.get(conversation_id)
        if conv is None:
            raise _not_found()
        return conv

    def _require_admin(self, admin_id: Any) -> dict[str, Any]:
        admin = self._admin_table().get(str(admin_id))
        if admin is None:
            raise _ClientError(404, "admin_not_found", f"Admin not found: {admin_id}")
        return admin

    def _reply(self, conv: _Conversation, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _invalid("a JSON object body is required")
        message_type = body.get("message_type")
        created_at = body.get("created_at")
        if body.get("type") == "admin":
            if message_type not in ("comment", "note", "quick_reply"):
                raise _invalid(f"message_type {message_type!r} is not valid for an admin reply")
            if message_type in ("comment", "note") and not body.get("body"):
                raise _invalid("body is required for comment and note replies")
            admin = self._require_admin(body.get("admin_id"))
            self._append_part(
                conv,
                part_type=message_type,
                body=body.get("body"),
                author=self._author(conv, "admin", admin["id"], ""),
                created_at=created_at,
            )
        elif body.get("type") == "user":
            if message_type != "comment" or not body.get("body"):
                raise _invalid("a contact reply needs message_type comment and a body")
            author_id = body.get("intercom_user_id") or conv.customer["id"]
            self._customer_comment(conv, body["body"], str(author_id), created_at)
        else:
            raise _invalid("type must be admin or user")
        return self._render(conv)

    def _manage(self, conv: _Conversation, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _invalid("a JSON object body is required")
        message_type = body.get("message_type")
        admin = self._require_admin(body.get("admin_id"))
        author = self._author(conv, "admin", admin["id"], "")
        text = body.get("body")
        if message_type == "assignment":
            kind = body.get("type")
            if kind not in ("admin", "team"):
                raise _invalid("type must be admin or team")
            assignee = _as_int(body.get("assignee_id"), "assignee_id")
            if kind == "admin":
                if assignee != 0:
                    self._require_admin(assignee)
                conv.admin_assignee_id = assignee
            else:
                conv.team_assignee_id = assignee
            assigned_to = (
                {"type": kind, "id": str(assignee)}
                if assignee
                else {"type": f"nobody_{kind}", "id": None}
            )
            self._append_part(
                conv, part_type="assignment", body=text, author=author, assigned_to=assigned_to
            )
        elif message_type == "close":
            conv.state, conv.snoozed_until = "closed", None
            self._append_part(conv, part_type="close", body=text, author=author)
        elif message_type == "open":
            conv.state, conv.snoozed_until = "open", None
            self._append_part(conv, part_type="open", body=None, author=author)
        elif message_type == "snoozed":
            conv.state = "snoozed"
            conv.snoozed_until = _as_int(body.get("snoozed_until"), "snoozed_until")
            self._append_part(conv, part_type="snoozed", body=None, author=author)
        else:
            raise _invalid(f"message_type {message_type!r} is not supported by /parts")
        return self._render(conv)

    def _update(self, conv: _Conversation, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _invalid("a JSON object body is required")
        if "read" in body:
            conv.read = _as_bool(body["read"], "read")
            self._touch(conv)
        return self._render(conv)

    # ------------------------------------------------------------------ search (lock held)

    def _search(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or "query" not in body:
            raise _invalid("query is required")
        query = body["query"]
        pagination = body.get("pagination") or {}
        if not isinstance(pagination, dict):
            raise _invalid("pagination must be an object")
        per_page = pagination.get("per_page", DEFAULT_PER_PAGE)
        if (
            isinstance(per_page, bool)
            or not isinstance(per_page, int)
            or not 1 <= per_page <= MAX_PER_PAGE
        ):
            raise _invalid(
                f"per_page must be an integer between 1 and {MAX_PER_PAGE}, got {per_page!r}"
            )
        self._check_query(query, level=0)
        query_key = hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]

        cursor = pagination.get("starting_after")
        if cursor:
            offset, ids = self._decode_cursor(cursor, query_key)
        else:
            matching = [c for c in self._conversations.values() if self._matches(c, query)]
            # An order clients must not rely on: neither by id nor by time.
            matching.sort(
                key=lambda c: hashlib.sha256(f"fake-intercom:{c.id}".encode()).hexdigest()
            )
            offset, ids = 0, [c.id for c in matching]

        page_ids = ids[offset : offset + per_page]
        pages: dict[str, Any] = {
            "type": "pages",
            "page": offset // per_page + 1,
            "per_page": per_page,
            "total_pages": math.ceil(len(ids) / per_page),
        }
        if offset + per_page < len(ids):
            pages["next"] = {
                "per_page": per_page,
                "starting_after": self._encode_cursor(offset + per_page, ids, query_key),
            }
        return {
            "type": "conversation.list",
            "pages": pages,
            "total_count": len(ids),
            "conversations": [
                self._render(self._conversations[i], with_parts=False) for i in page_ids
            ],
        }

    @staticmethod
    def _encode_cursor(offset: int, ids: list[str], query_key: str) -> str:
        raw = json.dumps({"o": offset, "q": query_key, "ids": ids}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @staticmethod
    def _decode_cursor(cursor: Any, query_key: str) -> tuple[int, list[str]]:
        try:
            padded = str(cursor) + "=" * (-len(str(cursor)) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()))
            offset, ids, key = int(data["o"]), [str(i) for i in data["ids"]], data["q"]
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise _invalid(f"starting_after is not a cursor this API returned: {cursor!r}") from exc
        if key != query_key:
            raise _invalid("starting_after belongs to a different query")
        return offset, ids

    def _check_query(self, query: Any, level: int) -> None:
        if not isinstance(query, dict):
            raise _invalid(f"a filter must be an object, got {query!r}")
        if "field" in query:
            name, op = query.get("field"), query.get("operator")
            if name not in self._fields:
                raise _invalid(f"field {name!r} is not searchable in this fake")
            if "value" not in query:
                raise _invalid(f"filter on {name!r} has no value")
            kind = self._fields[name][0]
            allowed = {
                "date": _DATE_OPS,
                "integer": _NUMBER_OPS,
                "string": _STRING_OPS,
                "strings": _STRING_OPS,
                "boolean": _BOOL_OPS,
            }[kind]
            if op not in allowed:
                raise _invalid(f"operator {op!r} is not supported for {kind} field {name!r}")
            value = query["value"]
            values = value if op in ("IN", "NIN") else [value]
            if op in ("IN", "NIN") and not isinstance(value, list):
                raise _invalid(f"{op} needs an array value")
            for v in values:
                if kind in ("date", "integer"):
                    _as_int(v, f"value for {name}")
                elif kind == "boolean":
                    _as_bool(v, f"value for {name}")
                elif not isinstance(v, str | int) or isinstance(v, bool):
                    raise _invalid(f"value for {name} must be a string, got {v!r}")
            return
        op, value = query.get("operator"), query.get("value")
        if op not in ("AND", "OR") or not isinstance(value, list):
            raise _invalid(
                f"a filter needs field/operator/value, or operator AND|OR with a list: {query!r}"
            )
        if level >= MAX_NESTING:
            raise _invalid(f"filters can be nested at most {MAX_NESTING} levels deep")
        if len(value) > MAX_FILTERS_PER_GROUP:
            raise _invalid(f"at most {MAX_FILTERS_PER_GROUP} filters per {op} group")
        for sub in value:
            self._check_query(sub, level + 1)

    def _matches(self, conv: _Conversation, query: dict[str, Any]) -> bool:
        if "field" not in query:
            results = (self._matches(conv, sub) for sub in query["value"])
            return all(results) if query["operator"] == "AND" else any(results)
        kind, getter = self._fields[query["field"]]
        actual, value = getter(conv), query["value"]
        op: str = query["operator"]
        if kind in ("date", "integer"):
            if actual is None:
                return False
            if op in ("IN", "NIN"):
                return bool(actual in [_as_int(v, "value") for v in value]) == (op == "IN")
            wanted = _as_int(value, "value")
            # Intercom documents `>` and `<` as "greater (lower) or equal than".
            number = int(actual)
            return {
                "=": number == wanted,
                "!=": number != wanted,
                ">": number >= wanted,
                "<": number <= wanted,
            }[op]
        if kind == "boolean":
            return bool(actual == _as_bool(value, "value")) == (op == "=")
        actual_values = actual if kind == "strings" else [actual]
        actual_strs = [str(a) for a in actual_values]
        if op in ("IN", "NIN"):
            return any(a in [str(v) for v in value] for a in actual_strs) == (op == "IN")
        wanted_s = str(value)
        tests: dict[str, Callable[[str], bool]] = {
            "=": lambda a: a == wanted_s,
            "!=": lambda a: a != wanted_s,
            "~": lambda a: wanted_s in a,
            "!~": lambda a: wanted_s not in a,
            "^": lambda a: a.startswith(wanted_s),
            "$": lambda a: a.endswith(wanted_s),
        }
        if op in ("!=", "!~"):
            return all(tests[op](a) for a in actual_strs)
        return any(tests[op](a) for a in actual_strs)

    # ------------------------------------------------------------------ model (lock held)

    def _now(self) -> int:
        return int(self.clock())

    def _new_part_id(self) -> str:
        part_id = str(self._next_part_id)
        self._next_part_id += 1
        return part_id

    def _get_conversation(self, conversation_id: str) -> _Conversation:
        conv = self._conversations.get(str(conversation_id))
        if conv is None:
            raise KeyError(f"no conversation {conversation_id!r} in the fake")
        return conv

    def _admin_table(self) -> dict[str, dict[str, Any]]:
        return self._admins or {_DEFAULT_ADMIN["id"]: dict(_DEFAULT_ADMIN)}

    def _me(self) -> dict[str, Any]:
        return next(iter(self._admin_table().values()))

    def _touch(self, conv: _Conversation, at: int | None = None) -> None:
        conv.updated_at = max(conv.updated_at, self._now() if at is None else at)

    def _author(
        self, conv: _Conversation, author_type: str, author_id: str, name: str
    ) -> dict[str, Any]:
        if author_type in TEAMMATE_AUTHOR_TYPES:
            admin = self._admin_table().get(author_id, {})
            return {
                "type": author_type,
                "id": author_id,
                "name": name or admin.get("name", ""),
                "email": admin.get("email", f"{author_type}{author_id}@example.com"),
            }
        if author_id == conv.customer["id"]:
            return {**conv.customer, "type": author_type, "name": name or conv.customer["name"]}
        return {
            "type": author_type,
            "id": author_id,
            "name": name,
            "email": f"{author_id}@customers.example.com",
        }

    def _append_part(
        self,
        conv: _Conversation,
        *,
        part_type: str,
        body: str | None,
        author: dict[str, Any],
        created_at: int | None = None,
        assigned_to: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        at = self._now() if created_at is None else int(created_at)
        part: dict[str, Any] = {
            "type": "conversation_part",
            "id": self._new_part_id(),
            "part_type": part_type,
            "body": body,
            "created_at": at,
            "updated_at": at,
            "notified_at": at,
            "assigned_to": assigned_to,
            "author": author,
            "attachments": [],
            "external_id": None,
            "redacted": False,
            "state": conv.state,
        }
        conv.parts.append(part)
        self._touch(conv, at)
        return part

    def _customer_comment(
        self, conv: _Conversation, body: str, author_id: str, created_at: Any
    ) -> dict[str, Any]:
        # A customer message reopens a closed or snoozed conversation, as in Intercom.
        conv.state, conv.snoozed_until, conv.read = "open", None, False
        author = self._author(conv, conv.customer["type"], author_id, "")
        return self._append_part(
            conv, part_type="comment", body=body, author=author, created_at=created_at
        )

    def _waiting_since(self, conv: _Conversation) -> int | None:
        if conv.id in self._waiting_hidden:
            return None
        comments: Iterator[tuple[str, int]] = (
            (p["author"]["type"], p["created_at"])
            for p in conv.parts
            if p["part_type"] in COMMENT_PART_TYPES
        )
        waiting: int | None = None
        for author_type, at in [(conv.source["author"]["type"], conv.created_at), *comments]:
            if author_type in CUSTOMER_AUTHOR_TYPES:
                if waiting is None:
                    waiting = at
            elif author_type in TEAMMATE_AUTHOR_TYPES:
                waiting = None
        return waiting

    def _render_admin(self, admin: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "admin",
            "id": admin["id"],
            "name": admin["name"],
            "email": admin["email"],
            "away_mode_enabled": False,
            "away_mode_reassign": False,
            "away_status_reason_id": None,
            "has_inbox_seat": True,
            "team_ids": [],
        }

    def _render_me(self) -> dict[str, Any]:
        me = self._me()
        return {
            "type": "admin",
            "id": me["id"],
            "email": me["email"],
            "name": me["name"],
            "email_verified": True,
            "app": {
                "type": "app",
                "id_code": "fakeintercom",
                "name": "Fake Intercom",
                "created_at": 1_700_000_000,
                "secure": False,
                "identity_verification": False,
                "timezone": "UTC",
                "region": "US",
            },
            "avatar": {"type": "avatar", "image_url": None},
            "has_inbox_seat": True,
        }

    def _render(
        self,
        conv: _Conversation,
        *,
        with_parts: bool = True,
        parts_limit: int | None = MAX_PARTS_RETURNED,
    ) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": "conversation",
            "id": conv.id,
            "created_at": conv.created_at,
            "updated_at": conv.updated_at,
            "waiting_since": self._waiting_since(conv),
            "snoozed_until": conv.snoozed_until,
            "source": copy.deepcopy(conv.source),
            "contacts": {
                "type": "contact.list",
                "contacts": [{"type": "contact", "id": conv.customer["id"], "external_id": None}],
            },
            "first_contact_reply": None,
            "admin_assignee_id": conv.admin_assignee_id,
            "team_assignee_id": conv.team_assignee_id,
            "open": conv.state != "closed",
            "state": conv.state,
            "read": conv.read,
            "tags": {"type": "tag.list", "tags": []},
            "priority": "none",
            "custom_attributes": {},
        }
        if with_parts:
            shown = conv.parts if parts_limit is None else conv.parts[-parts_limit:]
            data["conversation_parts"] = {
                "type": "conversation_part.list",
                "conversation_parts": copy.deepcopy(shown),
                # The real number of parts: more than len(conversation_parts) when truncated.
                "total_count": len(conv.parts),
            }
        return data
