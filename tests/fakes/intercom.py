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
`POST /conversations/{id}/reply`, `POST /conversations/{id}/parts`, `GET /teams`,
`GET /teams/{id}`, `POST /tickets/search` (the conversation search's query language,
limits and cursors, over the ticket fields), `GET /tickets/{id}`, `PUT /tickets/{id}`,
`GET /articles`, `GET /articles/{id}`. Anything else: 404.

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

Tickets and teams, as the description has them for 2.16: a ticket's `admin_assignee_id`
and `team_assignee_id` are integers, 0 when unassigned (never null); `snoozed_until` is
left out, not null, when the ticket is not snoozed; `id` (the API id) and `ticket_id`
(the Inbox number) differ, and only `id` finds the ticket. A team's `admin_ids` are
integers. In `PUT /tickets/{id}` (`update_ticket_request`) `admin_id` is an integer but
`assignee_id` a string, both top-level (the description's own request examples send
`assignee_id` as a number, which its schema refuses). `assignee_id` names a team or an
admin (ids are unique across both); "0" unassigns both; an unknown one is a 404
`assignee_not_found`. The description does not forbid unknown fields there, but the fake
refuses them (e.g. a nested `assignment` object): Intercom may well ignore them, and an
update that silently does nothing is a client bug. In `/tickets/search`,
`admin_assignee_id` and `team_assignee_id` are String fields (no `<`/`>`) and
`created_at` also takes `<=`/`>=`.

Help-center articles: `GET /articles` is paged by page number, not by cursor: `page`
(1-based, default 1) and `per_page` (default 25, at most 250) are query parameters the
description does not list; a bad value, or any other query parameter (e.g. a `state`
filter that Intercom does not have), is refused. The answer is an `article_list` shaped
like the description's example: `pages` has `page`, `per_page` and `total_pages` (at
least 1) and no `next`; a page past the last has empty `data`. Articles come newest
`updated_at` first (ties: higher id first), drafts included (`state` "draft", `url`
null): clients filter on `state`. `GET /articles/{id}` adds `statistics`; an unknown or
deleted id is a 404 `not_found` "Resource Not Found", as in the description.
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
from collections.abc import Callable, Iterable, Iterator, Mapping
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

__all__ = [
    "ARTICLE_STATES",
    "HELP_CENTER_AUDIENCES",
    "SPEC_PATH",
    "TICKET_STATES",
    "TICKET_UPDATE_FIELDS",
    "FakeIntercom",
    "RecordedRequest",
    "attachment",
    "load_spec",
]

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
# A ticket's state is one of the workspace's ticket states; each has one of these
# categories (`ticket_state.category`). The fake has one state per category:
# category -> (ticket_state id, internal_label, external_label).
TICKET_STATES: dict[str, tuple[str, str, str]] = {
    "submitted": ("8001", "Submitted", "Submitted"),
    "in_progress": ("8002", "In progress", "In progress"),
    "waiting_on_customer": ("8003", "Waiting on customer", "Waiting on you"),
    "resolved": ("8004", "Resolved", "Resolved"),
}
# `update_ticket_request`'s properties in 2.16, plus the `skip_notifications` that PUT
# /tickets/{id} adds beside it (tests check this against the description).
TICKET_UPDATE_FIELDS = frozenset(
    {
        "ticket_attributes",
        "ticket_state_id",
        "company_id",
        "open",
        "is_shared",
        "snoozed_until",
        "admin_id",
        "assignee_id",
        "skip_notifications",
    }
)

# `article_list_item.state` and `article_list_item.help_center_audience` in 2.16 (tests
# check these against the description).
ARTICLE_STATES = ("published", "draft")
HELP_CENTER_AUDIENCES = (
    "everyone",
    "all_users",
    "all_visitors",
    "all_leads",
    "all_visitors_and_leads",
    "restricted",
)
ARTICLES_DEFAULT_PER_PAGE = 25
ARTICLES_MAX_PER_PAGE = 250
_ARTICLE_QUERY_PARAMETERS = frozenset({"page", "per_page"})
_WORKSPACE_ID = "fakeintercom"
_HELP_CENTER_URL = "https://help.example.test/en/articles"
_FALLBACK_AUTHOR_ID = 991267492  # when the `/me` admin's id is not a number

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
    ("PUT", re.compile(r"/tickets/[^/]+")),
)
_VALIDATION_LOCK = threading.Lock()


def attachment(
    url: str,
    name: str,
    content_type: str,
    *,
    filesize: int = 1024,
    width: int | None = None,
    height: int | None = None,
) -> dict[str, Any]:
    """A file on a part, as 2.16 renders it (`part_attachment`): `type` "upload", `name`,
    `url`, `content_type`, `filesize` and, for images, `width` and `height` (an image
    gets 100 x 100 unless given; other files have neither). The description's
    `conversation_attachment_files` (base64 `data`) is what a *reply* may upload, not
    what a part shows."""
    item: dict[str, Any] = {
        "type": "upload",
        "name": name,
        "url": url,
        "content_type": content_type,
        "filesize": int(filesize),
    }
    if content_type.startswith("image/") or width is not None or height is not None:
        item["width"] = int(width if width is not None else 100)
        item["height"] = int(height if height is not None else 100)
    return item


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
class _Ticket:
    id: str  # the API id (what /tickets/{ticket_id} takes)
    ticket_id: str  # the number shown in the Inbox: never an API id in this fake
    created_at: int
    updated_at: int
    attributes: dict[str, Any]  # ticket_attributes
    state: str  # a TICKET_STATES category
    ticket_type: str  # a ticket type's name
    contact_id: str
    admin_assignee_id: int  # 0: not assigned to an admin
    team_assignee_id: int  # 0: not assigned to a team
    open: bool
    snoozed_until: int | None = None
    is_shared: bool = False
    previous_state: str | None = None  # the category before the latest state change
    parts: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Article:
    id: str
    title: str
    body: str  # HTML
    state: str  # one of ARTICLE_STATES
    author_id: int
    created_at: int
    updated_at: int
    ai_chatbot_availability: bool
    help_center_audience: str  # one of HELP_CENTER_AUDIENCES


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


def _page_parameter(query: Mapping[str, str], name: str, default: int, maximum: int) -> int:
    """A query parameter that must be a whole number in 1..maximum (digits only)."""
    raw = query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]+", raw) or not 1 <= int(raw) <= maximum:
        raise _invalid(f"{name} must be an integer between 1 and {maximum}, got {raw!r}")
    return int(raw)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _check_article_state(state: str) -> None:
    if state not in ARTICLE_STATES:
        raise ValueError(f"state must be one of {ARTICLE_STATES}, not {state!r}")


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


# Searchable field -> (kind, getter); the kind decides the operators allowed.
_Fields = dict[str, tuple[str, Callable[[Any], Any]]]


@dataclass(frozen=True)
class _SearchSpace:
    """What one search endpoint searches: `name` gives the answer's `{name}.list` type and
    its `{name}s` key."""

    name: str
    fields: _Fields
    items: Callable[[], Iterable[Any]]
    render: Callable[[Any], dict[str, Any]]
    extra_ops: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _search_fields(waiting_since: Callable[[_Conversation], int | None]) -> _Fields:
    """The fields of `/conversations/search`."""
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


# `category` is searched with these terms, not with the category names (the description of
# /tickets/search says so).
_TICKET_CATEGORY_TERMS = {"Customer": "request", "Back-office": "task", "Tracker": "tracker"}


def _ticket_search_fields(type_id: Callable[[_Ticket], str]) -> _Fields:
    """The fields of `/tickets/search`. Its description types `admin_assignee_id` and
    `team_assignee_id` as String (the ticket object has them as integers): `=`, `!=`, IN
    and NIN work, `<` and `>` do not; 0 or "0" finds the unassigned."""
    return {
        "id": ("string", lambda t: t.id),
        "created_at": ("date", lambda t: t.created_at),
        "updated_at": ("date", lambda t: t.updated_at),
        "snoozed_until": ("date", lambda t: t.snoozed_until),
        "title": ("string", lambda t: t.attributes.get("_default_title_") or ""),
        "description": ("string", lambda t: t.attributes.get("_default_description_") or ""),
        "category": ("string", lambda t: _TICKET_CATEGORY_TERMS["Customer"]),
        "ticket_type_id": ("string", type_id),
        "contact_ids": ("strings", lambda t: [t.contact_id]),
        "admin_assignee_id": ("string", lambda t: t.admin_assignee_id),
        "team_assignee_id": ("string", lambda t: t.team_assignee_id),
        "open": ("boolean", lambda t: t.open),
        "state": ("string", lambda t: t.state),
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
        self._teams: dict[str, dict[str, Any]] = {}
        self._tickets: dict[str, _Ticket] = {}
        self._ticket_types: dict[str, dict[str, Any]] = {}  # by name
        self._next_ticket_id = 7001
        self._next_inbox_ticket_id = 1
        self._next_ticket_type_id = 301
        self._articles: dict[str, _Article] = {}
        self._next_article_id = 9001
        self._next_part_id = 5_000_001
        self._next_contact = 1
        self._rules: list[_Rule] = []
        self._forced_429: list[float] = []  # reset_in of each pending rate_limit_next
        self._window_start: float | None = None
        self._window_count = 0
        self._stopping = threading.Event()
        self._waiting_hidden: set[str] = set()
        self._fields = _search_fields(self._waiting_since)
        self._ticket_fields = _ticket_search_fields(
            lambda t: self._ticket_types[t.ticket_type]["id"]
        )
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

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        """The ticket as GET /tickets/{id} would show it, but with all of its parts."""
        with self._lock:
            ticket = self._tickets.get(str(ticket_id))
            if ticket is None:
                raise KeyError(f"no ticket {ticket_id!r} in the fake")
            return self._render_ticket(ticket, parts_limit=None)

    def article(self, article_id: str) -> dict[str, Any]:
        """The article as GET /articles/{id} shows it (KeyError if unknown or deleted)."""
        with self._lock:
            return self._render_article(self._get_article(article_id), full=True)

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
            if admin_id in self._teams:
                raise ValueError(f"{admin_id} is a team's id (Intercom's ids are unique)")
            self._admins[admin_id] = {
                "id": admin_id,
                "name": name,
                "email": email or f"admin{admin_id}@example.com",
            }

    def add_team(self, team_id: str, name: str, admin_ids: list[str] | None = None) -> None:
        """A team (GET /teams, a ticket's assignee). Ids are numeric strings: the
        description has team ids as integers in `team_assignee_id`, `admin_ids` and
        `admin.team_ids`, and teams and admins share one id space."""
        team_id = str(team_id)
        members = [str(a) for a in admin_ids or []]
        for value in (team_id, *members):
            if not value.isdigit():
                raise ValueError(f"team and admin ids are numeric strings, not {value!r}")
        with self._lock:
            if team_id in self._admins:
                raise ValueError(f"{team_id} is an admin's id (Intercom's ids are unique)")
            self._teams[team_id] = {"id": team_id, "name": name, "admin_ids": members}

    def create_ticket(
        self,
        title: str,
        description: str,
        *,
        created_at: int | None = None,
        state: str = "submitted",
        team_assignee_id: str | None = None,
        admin_assignee_id: str | None = None,
        ticket_type: str = "Question",
    ) -> str:
        """A new Customer ticket; returns its API `id` (which is not its Inbox `ticket_id`).

        `state` is a ticket state category (TICKET_STATES); a `resolved` ticket starts
        closed (`open` false), any other open. `ticket_type` is a name: a ticket type of
        that name is made the first time it is used. Assignee ids need not be known.
        """
        if state not in TICKET_STATES:
            raise ValueError(f"state must be one of {tuple(TICKET_STATES)}, not {state!r}")
        assignees = []
        for what, value in (("team", team_assignee_id), ("admin", admin_assignee_id)):
            if value is not None and not str(value).isdigit():
                raise ValueError(f"{what} ids are numeric strings, not {value!r}")
            assignees.append(int(value) if value is not None else 0)
        with self._lock:
            now = self._now() if created_at is None else int(created_at)
            self._ticket_type(ticket_type, now)
            ticket = _Ticket(
                id=str(self._next_ticket_id),
                ticket_id=str(self._next_inbox_ticket_id),
                created_at=now,
                updated_at=now,
                attributes={"_default_title_": title, "_default_description_": description},
                state=state,
                ticket_type=ticket_type,
                contact_id=self._new_contact_id(),
                admin_assignee_id=assignees[1],
                team_assignee_id=assignees[0],
                open=state != "resolved",
            )
            self._next_ticket_id += 1
            self._next_inbox_ticket_id += 1
            self._tickets[ticket.id] = ticket
            return ticket.id

    def create_article(
        self,
        title: str,
        body_html: str,
        *,
        state: str = "published",
        updated_at: int | None = None,
        ai_chatbot_availability: bool = True,
        help_center_audience: str = "everyone",
    ) -> str:
        """A new help-center article (GET /articles); returns its id ("9001", "9002", ...).

        `created_at` and `updated_at` are `updated_at` (now by default). The author is the
        `/me` admin (or a fixed number when that id is not numeric).
        """
        _check_article_state(state)
        if help_center_audience not in HELP_CENTER_AUDIENCES:
            raise ValueError(
                f"help_center_audience must be one of {HELP_CENTER_AUDIENCES}, "
                f"not {help_center_audience!r}"
            )
        with self._lock:
            at = self._now() if updated_at is None else int(updated_at)
            me = str(self._me()["id"])
            article = _Article(
                id=str(self._next_article_id),
                title=title,
                body=body_html,
                state=state,
                author_id=int(me) if me.isdigit() else _FALLBACK_AUTHOR_ID,
                created_at=at,
                updated_at=at,
                ai_chatbot_availability=bool(ai_chatbot_availability),
                help_center_audience=help_center_audience,
            )
            self._next_article_id += 1
            self._articles[article.id] = article
            return article.id

    def update_article(
        self,
        article_id: str,
        *,
        title: str | None = None,
        body_html: str | None = None,
        state: str | None = None,
        updated_at: int | None = None,
    ) -> None:
        """Changes what is given; `updated_at` becomes the given value, else
        max(now, previous + 1): an edit always moves it, even within the same second."""
        if state is not None:
            _check_article_state(state)
        with self._lock:
            article = self._get_article(article_id)
            if title is not None:
                article.title = title
            if body_html is not None:
                article.body = body_html
            if state is not None:
                article.state = state
            article.updated_at = (
                int(updated_at)
                if updated_at is not None
                else max(self._now(), article.updated_at + 1)
            )

    def delete_article(self, article_id: str) -> None:
        """The article leaves GET /articles; GET /articles/{id} is a 404 from now on."""
        with self._lock:
            del self._articles[self._get_article(article_id).id]

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
        attachments: list[dict[str, Any]] | None = None,
    ) -> str:
        """A new conversation whose source (first message) is `body`; returns its id.

        The customer (`customer_id`, a generated contact id by default) is the
        conversation's contact. With `author_type` user/lead/contact the customer wrote
        the first message; with admin/bot the source author is the `/me` admin.
        `attachments` (see `attachment()`) are the files sent with the first message.
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
                customer_id = self._new_contact_id()
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
                    "attachments": copy.deepcopy(attachments or []),
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
        self,
        conversation_id: str,
        body: str,
        *,
        created_at: int | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> str:
        """The conversation's customer sends a message: reopens it and marks it unread.

        `attachments` (see `attachment()`) are the files sent with it; `body` may be ""
        for a message that is only a file."""
        with self._lock:
            conv = self._get_conversation(conversation_id)
            part = self._customer_comment(
                conv, body, conv.customer["id"], created_at, attachments=attachments
            )
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
        if m == "GET" and p == "/teams":
            return 200, {
                "type": "team.list",
                "teams": [self._render_team(t) for t in self._teams.values()],
            }
        if m == "GET" and (match := re.fullmatch(r"/teams/([^/]+)", p)):
            team = self._teams.get(match.group(1))
            if team is None:
                raise _ClientError(404, "team_not_found", "Team not found")
            return 200, self._render_team(team)
        if m == "GET" and p == "/articles":
            return 200, self._list_articles(req.query)
        if m == "GET" and (match := re.fullmatch(r"/articles/([0-9]+)", p)):
            # The description types article_id as an integer, so 09001 is 9001.
            article = self._articles.get(str(int(match.group(1))))
            if article is None:
                raise _not_found()  # the description's 404: not_found, Resource Not Found
            return 200, self._render_article(article, full=True)
        if m == "POST" and p == "/tickets/search":
            return 200, self._search(req.json, self._ticket_space())
        if match := re.fullmatch(r"/tickets/([^/]+)", p):
            ticket = self._tickets.get(match.group(1))
            if ticket is None:
                raise _ClientError(404, "ticket_not_found", "Ticket not found")
            if m == "GET":
                return 200, self._render_ticket(ticket)
            if m == "PUT":
                return 200, self._update_ticket(ticket, req.json)
        if m == "POST" and p == "/conversations/search":
            return 200, self._search(req.json, self._conversation_space())
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

    def _update_ticket(self, ticket: _Ticket, body: Any) -> dict[str, Any]:
        """PUT /tickets/{id}. Everything is checked before anything changes."""
        if not isinstance(body, dict):
            raise _invalid("a JSON object body is required")
        unknown = sorted(set(body) - TICKET_UPDATE_FIELDS)
        if unknown:
            raise _invalid(
                f"{', '.join(unknown)}: not in update_ticket_request (2.16); the fields are "
                f"{', '.join(sorted(TICKET_UPDATE_FIELDS))} (admin_id and assignee_id are "
                "top-level)"
            )
        if "admin_id" in body:
            admin = self._admin_table().get(str(body["admin_id"]))
            if admin is None:
                message = f"Admin not found: {body['admin_id']}"
                raise _ClientError(404, "assignee_not_found", message)
        else:
            admin = self._me()
        assignee: tuple[str, int] | None = None  # (kind, id); kind "" unassigns
        if "assignee_id" in body:
            wanted = str(body["assignee_id"]).strip()
            if wanted == "0":
                assignee = ("", 0)
            elif wanted in self._teams:
                assignee = ("team", int(wanted))
            elif wanted in self._admin_table() and wanted.isdigit():
                assignee = ("admin", int(wanted))
            else:
                message = f"Assignee not found: {body['assignee_id']}"
                raise _ClientError(404, "assignee_not_found", message)
        new_state: str | None = None
        if "ticket_state_id" in body:
            by_id = {v[0]: k for k, v in TICKET_STATES.items()}
            new_state = by_id.get(str(body["ticket_state_id"]))
            if new_state is None:
                raise _ClientError(
                    400,
                    "ticket_state_id_invalid",
                    "Ticket state id is not valid or is not associated with the ticket type",
                    invalid=True,
                )
        if "company_id" in body:
            raise _ClientError(404, "company_not_found", "Company Not Found")
        attributes = body.get("ticket_attributes", {})
        if not isinstance(attributes, dict):
            raise _invalid("ticket_attributes must be an object")
        flags = {k: _as_bool(body[k], k) for k in ("open", "is_shared") if k in body}
        snooze = (
            _as_int(body["snoozed_until"], "snoozed_until") if "snoozed_until" in body else None
        )

        author = self._ticket_author(admin)
        if attributes:
            ticket.attributes.update(attributes)
            self._ticket_part(ticket, "ticket_attribute_updated_by_admin", author)
        if new_state is not None and new_state != ticket.state:
            previous, ticket.state, ticket.previous_state = ticket.state, new_state, ticket.state
            self._ticket_part(
                ticket,
                "ticket_state_updated_by_admin",
                author,
                ticket_state=new_state,
                previous_ticket_state=previous,
            )
        if assignee is not None:
            kind, number = assignee
            if kind == "team":
                ticket.team_assignee_id = number
            elif kind == "admin":
                ticket.admin_assignee_id = number
            else:  # "Set this 0 to unassign it": the fake unassigns both
                ticket.admin_assignee_id = ticket.team_assignee_id = 0
            assigned_to = (
                {"type": kind, "id": str(number)} if kind else {"type": "nobody_admin", "id": None}
            )
            self._ticket_part(ticket, "assignment", author, assigned_to=assigned_to)
        if "is_shared" in flags:
            ticket.is_shared = flags["is_shared"]
        if flags.get("open") is False:  # "Closing a ticket will also unsnooze it."
            ticket.open, ticket.snoozed_until = False, None
            self._ticket_part(ticket, "close", author)
        elif snooze is not None:
            ticket.open, ticket.snoozed_until = True, snooze
            self._ticket_part(ticket, "snoozed", author)
        elif flags.get("open") is True and (not ticket.open or ticket.snoozed_until):
            ticket.open, ticket.snoozed_until = True, None
            self._ticket_part(ticket, "open", author)
        if set(body) - {"admin_id", "skip_notifications"}:
            ticket.updated_at = max(ticket.updated_at, self._now())
        return self._render_ticket(ticket)

    def _list_articles(self, query: Mapping[str, str]) -> dict[str, Any]:
        """GET /articles: page-number paging, newest `updated_at` first."""
        unknown = sorted(set(query) - _ARTICLE_QUERY_PARAMETERS)
        if unknown:
            raise _invalid(
                f"{', '.join(unknown)}: not a parameter of GET /articles (only page and "
                "per_page; drafts are listed too, filter on state)"
            )
        page = _page_parameter(query, "page", 1, 2**31 - 1)
        per_page = _page_parameter(
            query, "per_page", ARTICLES_DEFAULT_PER_PAGE, ARTICLES_MAX_PER_PAGE
        )
        ordered = sorted(
            self._articles.values(), key=lambda a: (a.updated_at, int(a.id)), reverse=True
        )
        start = (page - 1) * per_page
        return {
            "type": "list",
            "pages": {
                "type": "pages",
                "page": page,
                "per_page": per_page,
                "total_pages": max(1, math.ceil(len(ordered) / per_page)),
            },
            "total_count": len(ordered),
            "data": [self._render_article(a) for a in ordered[start : start + per_page]],
        }

    # ------------------------------------------------------------------ search (lock held)

    def _conversation_space(self) -> _SearchSpace:
        return _SearchSpace(
            "conversation",
            self._fields,
            lambda: self._conversations.values(),
            lambda c: self._render(c, with_parts=False),
        )

    def _ticket_space(self) -> _SearchSpace:
        return _SearchSpace(
            "ticket",
            self._ticket_fields,
            lambda: self._tickets.values(),
            self._render_ticket,
            # The description of /tickets/search: "You may use the <= or >= operators to
            # search by created_at" (they mean the same as > and <: both are inclusive).
            extra_ops={"created_at": frozenset({"<=", ">="})},
        )

    def _search(self, body: Any, space: _SearchSpace) -> dict[str, Any]:
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
        self._check_query(query, 0, space)
        # A cursor is only good for the query (and the resource) it was returned for.
        keyed = json.dumps([space.name, query], sort_keys=True)
        query_key = hashlib.sha256(keyed.encode()).hexdigest()[:16]

        cursor = pagination.get("starting_after")
        if cursor:
            offset, ids = self._decode_cursor(cursor, query_key)
        else:
            matching = [c for c in space.items() if self._matches(c, query, space.fields)]
            # An order clients must not rely on: neither by id nor by time.
            matching.sort(
                key=lambda c: hashlib.sha256(f"fake-intercom:{c.id}".encode()).hexdigest()
            )
            offset, ids = 0, [c.id for c in matching]
        found = {c.id: c for c in space.items()}

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
            "type": f"{space.name}.list",
            "pages": pages,
            "total_count": len(ids),
            f"{space.name}s": [space.render(found[i]) for i in page_ids if i in found],
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

    def _check_query(self, query: Any, level: int, space: _SearchSpace) -> None:
        if not isinstance(query, dict):
            raise _invalid(f"a filter must be an object, got {query!r}")
        if "field" in query:
            name, op = query.get("field"), query.get("operator")
            if name not in space.fields:
                raise _invalid(f"field {name!r} is not searchable in this fake ({space.name}s)")
            if "value" not in query:
                raise _invalid(f"filter on {name!r} has no value")
            kind = space.fields[name][0]
            allowed = {
                "date": _DATE_OPS,
                "integer": _NUMBER_OPS,
                "string": _STRING_OPS,
                "strings": _STRING_OPS,
                "boolean": _BOOL_OPS,
            }[kind] | space.extra_ops.get(name, frozenset())
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
            self._check_query(sub, level + 1, space)

    def _matches(self, item: Any, query: dict[str, Any], fields: _Fields) -> bool:
        if "field" not in query:
            results = (self._matches(item, sub, fields) for sub in query["value"])
            return all(results) if query["operator"] == "AND" else any(results)
        kind, getter = fields[query["field"]]
        actual, value = getter(item), query["value"]
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
                ">=": number >= wanted,
                "<": number <= wanted,
                "<=": number <= wanted,
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

    def _new_contact_id(self) -> str:
        contact_id = f"6762f1261bb69f9f{self._next_contact:08x}"
        self._next_contact += 1
        return contact_id

    def _ticket_type(self, name: str, at: int) -> dict[str, Any]:
        if name not in self._ticket_types:
            self._ticket_types[name] = {
                "id": str(self._next_ticket_type_id),
                "name": name,
                "created_at": at,
            }
            self._next_ticket_type_id += 1
        return self._ticket_types[name]

    def _ticket_author(self, admin: dict[str, Any]) -> dict[str, Any]:
        return {"type": "admin", "id": admin["id"], "name": admin["name"], "email": admin["email"]}

    def _ticket_part(
        self, ticket: _Ticket, part_type: str, author: dict[str, Any], **extra: Any
    ) -> dict[str, Any]:
        at = self._now()
        part: dict[str, Any] = {
            "type": "ticket_part",
            "id": self._new_part_id(),
            "part_type": part_type,
            "body": None,
            "created_at": at,
            "updated_at": at,
            **extra,
            "author": author,
            "attachments": [],
            "external_id": None,
            "redacted": False,
        }
        ticket.parts.append(part)
        return part

    def _get_article(self, article_id: str) -> _Article:
        article = self._articles.get(str(article_id))
        if article is None:
            raise KeyError(f"no article {article_id!r} in the fake")
        return article

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
        attachments: list[dict[str, Any]] | None = None,
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
            "attachments": copy.deepcopy(attachments or []),
            "external_id": None,
            "redacted": False,
            "state": conv.state,
        }
        conv.parts.append(part)
        self._touch(conv, at)
        return part

    def _customer_comment(
        self,
        conv: _Conversation,
        body: str,
        author_id: str,
        created_at: Any,
        *,
        attachments: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        # A customer message reopens a closed or snoozed conversation, as in Intercom.
        conv.state, conv.snoozed_until, conv.read = "open", None, False
        author = self._author(conv, conv.customer["type"], author_id, "")
        return self._append_part(
            conv,
            part_type="comment",
            body=body,
            author=author,
            created_at=created_at,
            attachments=attachments,
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
            "team_ids": [
                int(t["id"]) for t in self._teams.values() if admin["id"] in t["admin_ids"]
            ],
        }

    def _render_team(self, team: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "team",
            "id": team["id"],
            "name": team["name"],
            "admin_ids": [int(a) for a in team["admin_ids"]],  # integers, as described
            "distribution_method": "round_robin",
        }

    def _render_ticket_type(self, ticket_type: dict[str, Any]) -> dict[str, Any]:
        at = ticket_type["created_at"]
        attributes = [
            {
                "type": "ticket_type_attribute",
                "id": f"{ticket_type['id']}{n}",
                "workspace_id": "fakeintercom",
                "name": name,
                "description": label,
                "data_type": "string",
                "input_options": {"multiline": name == "_default_description_"},
                "order": n,
                "required_to_create": name == "_default_title_",
                "required_to_create_for_contacts": False,
                "visible_on_create": True,
                "visible_to_contacts": True,
                "default": True,
                "ticket_type_id": int(ticket_type["id"]),
                "archived": False,
                "created_at": at,
                "updated_at": at,
            }
            for n, (name, label) in enumerate(
                [("_default_title_", "Title"), ("_default_description_", "Description")]
            )
        ]
        return {
            "type": "ticket_type",
            "id": ticket_type["id"],
            "category": "Customer",
            "name": ticket_type["name"],
            "description": "",
            "icon": "\U0001f3ab",
            "workspace_id": "fakeintercom",
            "archived": False,
            "created_at": at,
            "updated_at": at,
            "is_internal": False,
            # The shape Intercom sends (the description's examples), not the one its
            # `ticket_type_attribute_list` schema names (`ticket_type_attributes.list`
            # with a `ticket_type_attributes` array); both fit the schema.
            "ticket_type_attributes": {"type": "list", "data": attributes},
        }

    def _render_ticket(
        self, ticket: _Ticket, *, parts_limit: int | None = MAX_PARTS_RETURNED
    ) -> dict[str, Any]:
        state_id, internal, external = TICKET_STATES[ticket.state]
        shown = ticket.parts if parts_limit is None else ticket.parts[-parts_limit:]
        data: dict[str, Any] = {
            "type": "ticket",
            "id": ticket.id,
            "ticket_id": ticket.ticket_id,
            "category": "Customer",
            "ticket_attributes": copy.deepcopy(ticket.attributes),
            "ticket_state": {
                "type": "ticket_state",
                "id": state_id,
                "category": ticket.state,
                "internal_label": internal,
                "external_label": external,
            },
            "ticket_type": self._render_ticket_type(self._ticket_types[ticket.ticket_type]),
            "contacts": {
                "type": "contact.list",
                "contacts": [{"type": "contact", "id": ticket.contact_id, "external_id": None}],
            },
            # Integers, 0 when unassigned (the `ticket` schema and all its examples).
            "admin_assignee_id": ticket.admin_assignee_id,
            "team_assignee_id": ticket.team_assignee_id,
            "created_at": ticket.created_at,
            "updated_at": ticket.updated_at,
            "ticket_parts": {
                "type": "ticket_part.list",
                "ticket_parts": copy.deepcopy(shown),
                "total_count": len(ticket.parts),
            },
            "open": ticket.open,
            "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
            "is_shared": ticket.is_shared,
            "previous_ticket_state_id": (
                TICKET_STATES[ticket.previous_state][0] if ticket.previous_state else None
            ),
        }
        if ticket.snoozed_until is not None:
            # `snoozed_until` is a non-nullable integer: absent (as in the examples), not
            # null, when the ticket is not snoozed.
            data["snoozed_until"] = ticket.snoozed_until
        return data

    def _render_article(self, article: _Article, *, full: bool = False) -> dict[str, Any]:
        """An `article_list_item`; with `full`, the `article` (adds `statistics`)."""
        slug = _slug(article.title)
        url = f"{_HELP_CENTER_URL}/{article.id}" + (f"-{slug}" if slug else "")
        data: dict[str, Any] = {
            "type": "article",
            "id": article.id,
            "workspace_id": _WORKSPACE_ID,
            "parent_ids": [],
            "tags": {"type": "tag.list", "tags": []},
            "title": article.title,
            "description": "",
            "body": article.body,
            "author_id": article.author_id,
            "state": article.state,
            "created_at": article.created_at,
            "updated_at": article.updated_at,
            "url": url if article.state == "published" else None,  # drafts are not live
            "ai_chatbot_availability": article.ai_chatbot_availability,
            "help_center_audience": article.help_center_audience,
            "has_unpublished_changes": False,
            "draft_updated_at": None,
        }
        if full:
            data["statistics"] = {
                "type": "article_statistics",
                "views": 0,
                "conversions": 0,
                "reactions": 0,
                "happy_reaction_percentage": 0,
                "neutral_reaction_percentage": 0,
                "sad_reaction_percentage": 0,
            }
        return data

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
