"""A fake of the hosted Mem0 platform API for tests, served over real HTTP.

`FakeMem0Platform` runs a stdlib ``ThreadingHTTPServer`` (HTTP/1.1) on 127.0.0.1 at a
random free port and keeps memories in memory. The real client talks to it unchanged::

    with FakeMem0Platform() as fake:
        client = MemoryClient(
            api_key=fake.api_key, host=fake.base_url, client=httpx.Client(timeout=5)
        )
        client.add("I use dark mode", user_id="u1", infer=False, metadata={"conv": "c1"})
        client.search("dark mode", filters={"AND": [{"user_id": "u1"}]})
        client.get_all(filters={"AND": [{"user_id": "u1"}, {"metadata": {"conv": "c1"}}]})

What mem0ai 2.2.1's ``MemoryClient`` sends, and what this fake answers:

* every request: ``Authorization: Token <api_key>`` (plus ``Mem0-User-ID`` = md5 of the
  key and ``X-Mem0-Client``). A missing or wrong key gets 401 ``{"detail": ...}``; the
  constructor turns that into ``ValueError("Error: <detail>")``, other methods into
  ``mem0.exceptions.AuthenticationError``. Every error body is ``{"detail": message}``,
  the key the client copies into its exception's ``message``.
* constructor -> ``GET /v1/ping/`` -> ``{"status", "message", "org_id", "project_id",
  "user_email"}``. The ping is not wrapped by the client's error handler: a timeout there
  raises a bare ``httpx.TimeoutException``, a 5xx a ``ValueError``.
* ``add(messages, user_id=..., metadata=..., infer=...)`` -> ``POST /v3/memories/add/``
  with ``{"messages": [...], **kwargs}`` (``None`` values dropped). Entity ids go top
  level (``filters={"user_id": ...}`` is accepted too). There is no ``async_mode``
  parameter in the SDK any more, but extra kwargs pass straight into the body, so
  ``add(..., async_mode=False)`` still sends it. Answer (``add_response="auto"``):
  ``async_mode`` decides when given; otherwise ``infer=False`` is synchronous and
  anything else (the default, ``infer`` omitted) is queued. Synchronous:
  ``{"results": [{"id", "memory", "event": "ADD"}], "status": "SUCCEEDED", "event_id",
  "message"}``; queued: ``{"message": "Memory processing has been queued for background
  execution", "status": "PENDING", "event_id"}`` (Mem0's documented v3 shape, no ids).
  Either way the fake stores the memories before answering: each non-system message
  with non-empty text becomes one memory whose text is the message content (what Mem0
  does for ``infer=False``; with inference the fake does the same, having no LLM).
* ``search(query, filters=..., top_k=..., threshold=...)`` -> ``POST /v3/memories/search/``
  with ``{"query", "filters", ...}`` -> ``{"results": [memory + "score"]}``, best first.
  Score: cosine similarity (clamped to [0, 1]) of hashed bag-of-words embeddings
  (:func:`tests.fakes.openai_server.embed_text`). ``top_k`` defaults to 10 (1..1000),
  ``threshold`` to 0.1 as on the v3 platform (pass 0.0 to keep everything).
* ``get_all(filters=..., page=..., page_size=...)`` -> ``POST /v3/memories/`` with the
  JSON body ``{"filters", ...}`` and ``page``/``page_size`` as query parameters ->
  ``{"count", "next", "previous", "results"}``, newest first, 100 per page by default;
  a page past the end is 404 ``Invalid page.``.
* ``get(id)`` -> ``GET /v1/memories/{id}/`` -> the memory; 404 if unknown
  (``MemoryNotFoundError``). ``update(id, text=..., metadata=...)`` ->
  ``PUT /v1/memories/{id}/`` -> the updated memory.
* ``delete(id)`` -> ``DELETE /v1/memories/{id}/`` -> ``{"message": "Memory deleted
  successfully!"}``.
* ``delete_all(user_id=...)`` -> ``DELETE /v1/memories/?user_id=...`` (query string) ->
  ``{"message": "Memories deleted successfully!"}``; ``"*"`` matches any value. Careful:
  ``delete_all(filters={...})`` makes httpx send ``filters=`` + the *Python repr* of the
  dict; the fake refuses that with 400.
* ``search``/``get_all`` refuse top-level ``user_id``/``agent_id``/``app_id``/``run_id``
  client-side (``ValueError``); the fake answers 400 if they arrive anyway.

Filters (search and get_all; the v2/v3 platform language): the root is an object whose
keys are combined with AND, so ``{"user_id": "u1"}`` and ``{"AND": [{"user_id": "u1"}]}``
are the same. ``AND``/``OR`` take a non-empty list of such objects, ``NOT`` an object or
a list (negating their AND). Fields:

* ``user_id``/``agent_id``/``app_id``/``run_id``: ``"x"``, ``"*"`` (any non-null),
  ``{"eq"|"ne": "x"}``, ``{"in": ["x", "y"]}``;
* ``metadata``: ``{"key": value}`` (top-level keys, exact JSON equality; several keys all
  must match), or ``{"key": {"eq"|"ne"|"contains": value}}``; other operators are 400;
* ``created_at``/``updated_at``/``timestamp``: ``{"gt"|"gte"|"lt"|"lte"|"eq"|"ne": ISO}``;
* ``categories``: ``"c"``, ``{"in": [...]}``, ``{"contains"|"eq"|"ne": "c"}``;
* ``keywords``: ``{"contains"|"icontains": "text"}`` on the memory text;
* ``memory_ids``: ``["id", ...]`` or ``{"in": [...]}``.

Anything else (unknown key or operator, lower-case ``and``, ``nin``, SQL-style ``>=``, a
non-list ``AND``, ...) is answered 400 with a message saying what and where, and the
message is appended to ``fake.errors``. The fake is stricter than the platform in two
ways that catch likely bugs: ``filters`` must be present and must mention at least one
entity field (use ``"*"`` for "any"), and unknown body or query keys are refused rather
than ignored. It is simpler in one: an entity filter matches on that field alone,
while the platform documents "implicit null scoping" (``{"user_id": "u1"}`` there skips
memories that also carry an ``agent_id``/``run_id``/``app_id`` unless those are given,
e.g. as ``"*"``).

Accepted but ignored: ``rerank``, ``fields``, ``reference_date``, ``latest_only``,
``keyword_search`` (search/get_all) and ``custom_categories``, ``custom_instructions``,
``agent_custom_instructions``, ``structured_data_schema``, ``includes``, ``excludes``,
``immutable`` (add). Honoured besides the above: ``timestamp`` (add: backdates
``created_at``), ``expiration_date`` (expired memories are hidden unless
``show_expired``), ``start_date``/``end_date`` (get_all, on ``created_at``) and top-level
``metadata``/``categories`` in a search body (extra AND conditions).

Provenance: endpoints, request bodies and client behaviour are read from mem0ai 2.2.1's
``mem0/client/main.py``; the queued add answer, the get_all envelope, the search result
fields and the filter language from Mem0's docs (platform v2->v3 migration guide, "Memory
Filters"). Not documented by Mem0, so best guesses: the synchronous add answer and the
rule that ``infer=False`` answers synchronously (taken from a self-hosted
platform-compatible server), the 401/404 ``detail`` texts, the get_all page size and
order, and the ``delete``/``delete_all``/``update`` answers. Code under test should accept
both add shapes (``add_response`` forces one).

Order in which a request is processed: recorded in ``requests``; ``delay`` is read and,
if the key is right, the next queued ``fail_next`` status is taken; sleep ``delay``;
auth (401, recorded in ``errors``); the queued failure (``{"detail": "fake failure"}``,
nothing applied); routing and validation (400/404/405, recorded in ``errors``); the
handler. ``errors`` also gets a line when the fake itself crashes (answered 500). The
client never retries, so each client call is exactly one request.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, cast
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from tests.fakes.loopback import JsonHandler, LoopbackServer
from tests.fakes.openai_server import embed_text

__all__ = [
    "ENTITY_FIELDS",
    "FakeMem0Error",
    "FakeMem0Platform",
    "RecordedRequest",
]

log = logging.getLogger(__name__)

ENTITY_FIELDS: tuple[str, ...] = ("user_id", "agent_id", "app_id", "run_id")
_TIME_FIELDS = ("created_at", "updated_at", "timestamp")
_FILTER_KEYS = (
    "AND",
    "OR",
    "NOT",
    *ENTITY_FIELDS,
    *_TIME_FIELDS,
    "categories",
    "metadata",
    "keywords",
    "memory_ids",
)
_ADD_KEYS = frozenset(
    {
        "messages",
        *ENTITY_FIELDS,
        "filters",
        "metadata",
        "infer",
        "async_mode",
        "custom_categories",
        "custom_instructions",
        "agent_custom_instructions",
        "timestamp",
        "expiration_date",
        "structured_data_schema",
        "includes",
        "excludes",
        "immutable",
    }
)
_SEARCH_KEYS = frozenset(
    {
        "query",
        "filters",
        "top_k",
        "threshold",
        "rerank",
        "fields",
        "categories",
        "metadata",
        "show_expired",
        "reference_date",
        "latest_only",
        "keyword_search",
    }
)
_GET_ALL_KEYS = frozenset(
    {"filters", "start_date", "end_date", "categories", "show_expired", "latest_only", "fields"}
)
_UPDATE_KEYS = frozenset({"text", "metadata", "timestamp", "expiration_date"})
_ROLES = frozenset({"user", "assistant", "system"})
QUEUED_MESSAGE = "Memory processing has been queued for background execution"
DEFAULT_PAGE_SIZE = 100
DEFAULT_TOP_K = 10
DEFAULT_THRESHOLD = 0.1

Predicate = Callable[[dict[str, Any]], bool]


class FakeMem0Error(Exception):
    """Raised inside the handler to answer ``status`` with ``{"detail": message}``.

    ``record=True`` marks a client mistake: the message also goes to ``fake.errors``.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        record: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.record = record
        self.headers = dict(headers or {})


def _bad(message: str) -> FakeMem0Error:
    return FakeMem0Error(400, message, record=True)


@dataclass
class RecordedRequest:
    method: str
    path: str  # without the query string, percent-decoding left as sent
    query: dict[str, str]  # last value wins
    headers: dict[str, str]  # names normalised to Title-Case ("Mem0-User-Id")
    json: Any  # parsed body, None when there is none (or it is not JSON)
    at: float  # time.time() when received
    status: int = 0  # the status answered; 0 until decided


# --------------------------------------------------------------------------- helpers


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _parse_moment(value: Any, where: str) -> datetime:
    """ISO 8601 date or datetime (naive means UTC), or a Unix timestamp."""
    if isinstance(value, bool):
        raise _bad(f"{where}: expected an ISO 8601 date/time, got {value!r}")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise _bad(f"{where}: {value!r} is not an ISO 8601 date/time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    raise _bad(f"{where}: expected an ISO 8601 date/time, got {value!r}")


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: ``1 != True``, ``1 == 1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _all_of(preds: list[Predicate]) -> Predicate:
    return lambda m: all(p(m) for p in preds)


def _any_of(preds: list[Predicate]) -> Predicate:
    return lambda m: any(p(m) for p in preds)


def _one_operator(value: dict[str, Any], allowed: tuple[str, ...], where: str) -> tuple[str, Any]:
    if len(value) != 1:
        raise _bad(f"{where}: expected exactly one operator out of {list(allowed)}, got {value!r}")
    ((op, operand),) = value.items()
    if op not in allowed:
        hint = " (the platform has no 'nin'; use NOT + in)" if op == "nin" else ""
        raise _bad(f"{where}: unsupported operator {op!r}; use one of {list(allowed)}{hint}")
    return op, operand


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _bad(f"{where}: expected a non-empty list of strings, got {value!r}")
    return list(value)


# --------------------------------------------------------------------------- filters


def compile_filters(node: Any, where: str = "filters") -> Predicate:
    """Compile a platform filter object into a predicate over memory dicts.

    Raises :class:`FakeMem0Error` (400, recorded) for shapes the platform would refuse
    or that this fake does not implement.
    """
    if not isinstance(node, dict) or not node:
        raise _bad(f"{where}: expected a non-empty object of conditions, got {node!r}")
    return _all_of([_compile_key(key, value, f"{where}.{key}") for key, value in node.items()])


def _compile_key(key: str, value: Any, where: str) -> Predicate:
    if key in ("AND", "OR"):
        if not isinstance(value, list) or not value:
            raise _bad(f"{where}: {key} takes a non-empty list of conditions, got {value!r}")
        subs = [compile_filters(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return _all_of(subs) if key == "AND" else _any_of(subs)
    if key == "NOT":
        if isinstance(value, list):
            if not value:
                raise _bad(f"{where}: NOT takes a condition object or a non-empty list")
            inner = _all_of(
                [compile_filters(item, f"{where}[{i}]") for i, item in enumerate(value)]
            )
        else:
            inner = compile_filters(value, where)
        return lambda m: not inner(m)
    if key in ENTITY_FIELDS:
        return _compile_entity(key, value, where)
    if key in _TIME_FIELDS:
        return _compile_time("created_at" if key == "timestamp" else key, value, where)
    if key == "metadata":
        return _compile_metadata(value, where)
    if key == "categories":
        return _compile_categories(value, where)
    if key == "keywords":
        return _compile_keywords(value, where)
    if key == "memory_ids":
        ids = set(_string_list(value["in"] if _is_in(value) else value, where))
        return lambda m: m["id"] in ids
    hint = (
        f" (logical operators are upper-case: {key.upper()!r})"
        if key in ("and", "or", "not")
        else ""
    )
    raise _bad(f"{where}: unsupported filter key {key!r}{hint}; allowed: {list(_FILTER_KEYS)}")


def _is_in(value: Any) -> bool:
    return isinstance(value, dict) and list(value) == ["in"]


def _compile_entity(field: str, value: Any, where: str) -> Predicate:
    if isinstance(value, str) and value:
        if value == "*":
            return lambda m: m.get(field) is not None
        return lambda m: m.get(field) == value
    if isinstance(value, dict):
        op, operand = _one_operator(value, ("eq", "ne", "in"), where)
        if op == "in":
            allowed = set(_string_list(operand, f"{where}.in"))
            return lambda m: m.get(field) in allowed
        if not isinstance(operand, str) or not operand:
            raise _bad(f"{where}.{op}: expected a non-empty string, got {operand!r}")
        if op == "eq":
            return _compile_entity(field, operand, where)
        return lambda m: m.get(field) != operand  # ne includes null, as documented
    raise _bad(f"{where}: expected an id string, '*', or {{'eq'|'ne'|'in': ...}}, got {value!r}")


_TIME_OPS: dict[str, Callable[[datetime, datetime], bool]] = {
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
}


def _compile_time(field: str, value: Any, where: str) -> Predicate:
    if not isinstance(value, dict) or not value:
        value = {"eq": value}
    checks: list[tuple[Callable[[datetime, datetime], bool], datetime]] = []
    for op, operand in value.items():
        if op not in _TIME_OPS:
            raise _bad(f"{where}: unsupported operator {op!r}; use one of {list(_TIME_OPS)}")
        checks.append((_TIME_OPS[op], _parse_moment(operand, f"{where}.{op}")))

    def pred(m: dict[str, Any]) -> bool:
        raw = m.get(field)
        if raw is None:
            return False
        moment = datetime.fromisoformat(raw)
        return all(check(moment, bound) for check, bound in checks)

    return pred


def _compile_metadata(value: Any, where: str) -> Predicate:
    if not isinstance(value, dict) or not value:
        raise _bad(f"{where}: expected {{'key': value}} (top-level metadata keys), got {value!r}")
    preds: list[Predicate] = []
    for key, cond in value.items():
        op, operand = "eq", cond
        if isinstance(cond, dict):
            op, operand = _one_operator(cond, ("eq", "ne", "contains"), f"{where}.{key}")
        preds.append(_metadata_check(key, op, operand, f"{where}.{key}"))
    return _all_of(preds)


def _metadata_check(key: str, op: str, operand: Any, where: str) -> Predicate:
    def equal(m: dict[str, Any]) -> bool:
        md = m.get("metadata") or {}
        return key in md and _json_equal(md[key], operand)

    if op == "eq":
        return equal
    if op == "ne":
        return lambda m: not equal(m)
    if not isinstance(operand, str | int | float):
        raise _bad(f"{where}.contains: expected a string or number, got {operand!r}")

    def contains(m: dict[str, Any]) -> bool:
        found = (m.get("metadata") or {}).get(key)
        if isinstance(found, str):
            return isinstance(operand, str) and operand in found
        if isinstance(found, list):
            return any(_json_equal(item, operand) for item in found)
        return False

    return contains


def _compile_categories(value: Any, where: str) -> Predicate:
    if isinstance(value, str):
        value = {"eq": value}
    if not isinstance(value, dict):
        raise _bad(f"{where}: expected a category string or an operator object, got {value!r}")
    op, operand = _one_operator(value, ("in", "contains", "eq", "ne"), where)
    if op == "in":
        wanted = set(_string_list(operand, f"{where}.in"))
        return lambda m: bool(wanted.intersection(m.get("categories") or []))
    if not isinstance(operand, str):
        raise _bad(f"{where}.{op}: expected a string, got {operand!r}")
    if op == "contains":
        return lambda m: any(operand in c for c in m.get("categories") or [])
    if op == "eq":
        return lambda m: operand in (m.get("categories") or [])
    return lambda m: operand not in (m.get("categories") or [])


def _compile_keywords(value: Any, where: str) -> Predicate:
    if not isinstance(value, dict):
        raise _bad(f"{where}: expected {{'contains'|'icontains': text}}, got {value!r}")
    op, operand = _one_operator(value, ("contains", "icontains"), where)
    if not isinstance(operand, str) or not operand:
        raise _bad(f"{where}.{op}: expected a non-empty string, got {operand!r}")
    if op == "contains":
        return lambda m: operand in m["memory"]
    needle = operand.casefold()
    return lambda m: needle in m["memory"].casefold()


def _mentions_entity(node: Any) -> bool:
    if isinstance(node, dict):
        return any(k in ENTITY_FIELDS or _mentions_entity(v) for k, v in node.items())
    if isinstance(node, list):
        return any(_mentions_entity(item) for item in node)
    return False


def _scoped_filters(body: dict[str, Any]) -> Predicate:
    """The predicate for a search/get_all body's required, entity-scoped ``filters``."""
    filters = body.get("filters")
    if filters is None:
        raise _bad("filters is required, e.g. filters={'AND': [{'user_id': 'u1'}]}")
    pred = compile_filters(filters)
    if not _mentions_entity(filters):
        raise _bad(
            "filters must scope to at least one of user_id/agent_id/app_id/run_id "
            "(use '*' for any value)"
        )
    return pred


_KEY_HINTS: dict[str, str] = {
    **{
        key: f"v3 takes {key} inside filters, e.g. filters={{'AND': [{{'{key}': ...}}]}}"
        for key in ENTITY_FIELDS
    },
    "limit": "v3 calls it top_k",
    "page": "page and page_size travel as query parameters",
    "page_size": "page and page_size travel as query parameters",
    "version": "removed from the SDK; the v3 endpoints are fixed",
    "output_format": "removed from the SDK; answers are always v1.1-shaped",
}


def _check_keys(body: dict[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        hints = "".join(f" ({k}: {_KEY_HINTS[k]})" for k in unknown if k in _KEY_HINTS)
        raise _bad(f"{what}: unsupported field(s) {unknown}{hints}; accepted: {sorted(allowed)}")


def _optional_bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise _bad(f"{key}: expected a boolean, got {value!r}")
    return value


def _expiration(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return date.fromisoformat(value).isoformat()
    raise _bad(f"{where}: expected a date in YYYY-MM-DD format, got {value!r}")


def _expired(memory: dict[str, Any], today: date) -> bool:
    exp = memory.get("expiration_date")
    return exp is not None and date.fromisoformat(exp) < today


# --------------------------------------------------------------------------- server


def _title(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


class _Handler(JsonHandler["FakeMem0Platform"]):
    server_version = "FakeMem0Platform/1.0"
    log_label = "fake-mem0"

    def dispatch(self) -> None:
        fake = self.server.fake
        try:
            raw = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            raw = b""
        url = urlsplit(self.path)
        parsed: Any = None
        if raw:
            with contextlib.suppress(UnicodeDecodeError, json.JSONDecodeError):
                parsed = json.loads(raw.decode("utf-8"))
        rec = RecordedRequest(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={_title(k): v for k, v in self.headers.items()},
            json=parsed,
            at=time.time(),
        )
        headers: dict[str, str] = {}
        try:
            status, payload = fake._handle(rec, raw)
        except FakeMem0Error as err:
            status, payload, headers = err.status, {"detail": err.message}, err.headers
            if err.record:
                fake._record_error(f"{rec.method} {rec.path}: {status} {err.message}")
        except Exception as exc:  # keep the wire protocol intact on fake bugs
            log.exception("fake-mem0 handler crashed")
            fake._record_error(f"{rec.method} {rec.path}: fake crashed: {exc!r}")
            status, payload = 500, {"detail": f"Fake server error: {exc!r}"}
        rec.status = status
        # If the client went away (e.g. its timeout fired during `delay`), send_json
        # just marks the connection for closing.
        self.send_json(status, payload, headers.items())


# --------------------------------------------------------------------------- public class


class FakeMem0Platform(LoopbackServer):
    """A fake Mem0 platform API on 127.0.0.1 for tests; see the module docstring.

    ``base_url`` is ``http://127.0.0.1:PORT`` (pass as ``host=``); it, ``port``,
    ``start()``, ``stop()`` and the context manager come from
    :class:`~tests.fakes.loopback.LoopbackServer`.
    """

    handler_class = _Handler
    thread_label = "fake-mem0"

    def __init__(self, api_key: str = "m0-test", *, embedding_dim: int = 64) -> None:
        if embedding_dim < 1:
            raise ValueError("embedding_dim must be >= 1")
        self.api_key: str = api_key
        self.embedding_dim: int = embedding_dim
        self.org_id: str = "org_fake"
        self.project_id: str = "proj_fake"
        self.user_email: str = "tester@example.com"
        #: Seconds to sleep before answering each request (taken when it arrives).
        self.delay: float = 0.0
        #: "auto" (see the module docstring), "sync" or "queued": the add answer's shape.
        self.add_response: Literal["auto", "sync", "queued"] = "auto"
        #: Every request received, in order (including refused ones).
        self.requests: list[RecordedRequest] = []
        #: Client mistakes (bad filter shape, missing entity id, unknown field, wrong
        #: key, unknown route, ...) and fake crashes, one line each.
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._memories: dict[str, dict[str, Any]] = {}  # insertion-ordered
        self._seq: dict[str, int] = {}
        self._vectors: dict[str, list[float]] = {}
        self._counter = 0
        self._failures: deque[int] = deque()

    # -- configuration and inspection --------------------------------------

    def fail_next(self, status: int, *, times: int = 1) -> None:
        """Answer the next ``times`` authorised requests (any route) with ``status``.

        The body is ``{"detail": "fake failure"}``; nothing is applied. Calls queue up.
        """
        if not 400 <= status <= 599:
            raise ValueError("status must be a 4xx or 5xx code")
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._failures.extend([status] * times)

    @property
    def memories(self) -> list[dict[str, Any]]:
        """A deep copy of the stored memories, oldest first."""
        with self._lock:
            return copy.deepcopy(list(self._memories.values()))

    def seed_memory(
        self,
        text: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        app_id: str | None = None,
        run_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        categories: list[str] | None = None,
        created_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Store a memory directly (no request recorded); returns a copy of it."""
        ids = {"user_id": user_id, "agent_id": agent_id, "app_id": app_id, "run_id": run_id}
        with self._lock:
            stored = self._store_locked(
                text,
                {k: v for k, v in ids.items() if v is not None},
                copy.deepcopy(metadata),
                created_at or _now(),
                None,
                list(categories or []),
            )
            return copy.deepcopy(stored)

    def reset(self) -> None:
        """Forget memories, requests, errors and queued failures; restore ``delay`` and
        ``add_response``. Keeps the server running (handy with one server per module)."""
        with self._lock:
            self.delay = 0.0
            self.add_response = "auto"
            self.requests.clear()
            self.errors.clear()
            self._failures.clear()
            self._memories.clear()
            self._seq.clear()
            self._vectors.clear()

    # -- request handling (called from server threads) ----------------------

    def _record_error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    def _authorised(self, header: str | None) -> str | None:
        """None if the key is right, else the 401 detail."""
        if not header:
            return "Authentication credentials were not provided."
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "token" or key.strip() != self.api_key:
            return "Invalid API key. Please check your key and try again."
        return None

    def _handle(self, rec: RecordedRequest, raw: bytes) -> tuple[int, Any]:
        denied = self._authorised(rec.headers.get("Authorization"))
        with self._lock:
            self.requests.append(rec)
            delay = self.delay
            failure = self._failures.popleft() if self._failures and denied is None else None
        if delay > 0:
            time.sleep(delay)
        if denied is not None:
            raise FakeMem0Error(401, denied, record=True, headers={"WWW-Authenticate": "Token"})
        if failure is not None:
            raise FakeMem0Error(failure, "fake failure")
        return self._route(rec, raw)

    def _route(self, rec: RecordedRequest, raw: bytes) -> tuple[int, Any]:
        method, path = rec.method, rec.path
        routes: dict[str, dict[str, Callable[[], tuple[int, Any]]]] = {
            "/v1/ping/": {"GET": self._ping},
            "/v3/memories/add/": {"POST": lambda: self._add(self._body(rec, raw))},
            "/v3/memories/search/": {"POST": lambda: self._search(self._body(rec, raw))},
            "/v3/memories/": {"POST": lambda: self._get_all(rec, self._body(rec, raw))},
            "/v1/memories/": {"DELETE": lambda: self._delete_all(rec.query)},
        }
        handlers = routes.get(path)
        if handlers is None and path.startswith("/v1/memories/") and path.count("/") == 4:
            memory_id = unquote(path[len("/v1/memories/") : -1])
            if path.endswith("/") and memory_id:
                handlers = {
                    "GET": lambda: self._get(memory_id),
                    "PUT": lambda: self._update(memory_id, self._body(rec, raw)),
                    "DELETE": lambda: self._delete(memory_id, rec.query),
                }
        if handlers is None:
            hint = "" if path.endswith("/") else " (the platform's paths end with '/')"
            raise FakeMem0Error(404, f"Not found: {method} {path}{hint}", record=True)
        handler = handlers.get(method)
        if handler is None:
            raise FakeMem0Error(405, f'Method "{method}" not allowed.', record=True)
        return handler()

    @staticmethod
    def _body(rec: RecordedRequest, raw: bytes) -> dict[str, Any]:
        if not raw:
            raise _bad("a JSON object body is required")
        if not isinstance(rec.json, dict):
            raise _bad(f"JSON parse error - the body must be a JSON object: {raw[:200]!r}")
        return cast(dict[str, Any], rec.json)

    def _ping(self) -> tuple[int, Any]:
        return 200, {
            "status": "ok",
            "message": "pong",
            "org_id": self.org_id,
            "project_id": self.project_id,
            "user_email": self.user_email,
        }

    # -- add -----------------------------------------------------------------

    def _add(self, body: dict[str, Any]) -> tuple[int, Any]:
        _check_keys(body, _ADD_KEYS, "add")
        texts = self._message_texts(body.get("messages"))
        entities = self._add_entities(body)
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise _bad(f"metadata: expected an object, got {metadata!r}")
        infer = _optional_bool(body, "infer")
        async_mode = _optional_bool(body, "async_mode")
        created = _now()
        if body.get("timestamp") is not None:
            created = _parse_moment(body["timestamp"], "timestamp")
        expiration = _expiration(body.get("expiration_date"), "expiration_date")

        with self._lock:
            mode = self.add_response
            stored = [
                self._store_locked(text, entities, copy.deepcopy(metadata), created, expiration, [])
                for text in texts
            ]
            results = [{"id": m["id"], "memory": m["memory"], "event": "ADD"} for m in stored]
        if mode == "auto":
            synchronous = (infer is False) if async_mode is None else not async_mode
        else:
            synchronous = mode == "sync"
        event_id = str(uuid.uuid4())
        if synchronous:
            return 200, {
                "results": results,
                "status": "SUCCEEDED",
                "event_id": event_id,
                "message": "Memory added successfully.",
            }
        return 200, {"message": QUEUED_MESSAGE, "status": "PENDING", "event_id": event_id}

    @staticmethod
    def _message_texts(messages: Any) -> list[str]:
        if not isinstance(messages, list) or not messages:
            raise _bad("messages: expected a non-empty list of {'role', 'content'} objects")
        texts: list[str] = []
        for i, msg in enumerate(messages):
            where = f"messages[{i}]"
            if not isinstance(msg, dict):
                raise _bad(f"{where}: expected an object, got {msg!r}")
            role, content = msg.get("role"), msg.get("content")
            if role not in _ROLES:
                raise _bad(f"{where}.role: expected one of {sorted(_ROLES)}, got {role!r}")
            if not isinstance(content, str):
                raise _bad(f"{where}.content: the fake supports text content only, got {content!r}")
            if role != "system" and content.strip():
                texts.append(content)
        return texts

    @staticmethod
    def _add_entities(body: dict[str, Any]) -> dict[str, str]:
        entities: dict[str, str] = {}
        for key in ENTITY_FIELDS:
            value = body.get(key)
            if value is None:
                continue
            if not isinstance(value, str) or not value or value == "*":
                raise _bad(f"{key}: expected a non-empty id string, got {value!r}")
            entities[key] = value
        filters = body.get("filters")
        if filters is not None:
            items = filters.get("AND") if isinstance(filters, dict) and "AND" in filters else None
            conditions = items if isinstance(items, list) and len(filters) == 1 else [filters]
            for i, cond in enumerate(conditions):
                if not (isinstance(cond, dict) and cond and set(cond) <= set(ENTITY_FIELDS)):
                    raise _bad(
                        f"filters[{i}]: add accepts only entity ids here, like "
                        f"{{'user_id': 'u1'}}; got {cond!r}"
                    )
                for key, value in cond.items():
                    if not isinstance(value, str) or not value or value == "*":
                        raise _bad(f"filters.{key}: expected a non-empty id string, got {value!r}")
                    if entities.get(key, value) != value:
                        raise _bad(f"{key} given twice with different values")
                    entities[key] = value
        if not entities:
            raise _bad("At least one of user_id, agent_id, app_id, run_id is required")
        return entities

    def _store_locked(
        self,
        text: str,
        entities: dict[str, str],
        metadata: dict[str, Any] | None,
        created: datetime,
        expiration: str | None,
        categories: list[str],
    ) -> dict[str, Any]:
        memory_id = str(uuid.uuid4())
        stamp = _iso(created)
        memory: dict[str, Any] = {
            "id": memory_id,
            "memory": text,
            **{key: entities.get(key) for key in ENTITY_FIELDS},
            "hash": hashlib.md5(text.encode("utf-8")).hexdigest(),
            "metadata": metadata,
            "categories": categories,
            "created_at": stamp,
            "updated_at": stamp,
            "expiration_date": expiration,
        }
        self._counter += 1
        self._memories[memory_id] = memory
        self._seq[memory_id] = self._counter
        self._vectors[memory_id] = embed_text(text, self.embedding_dim)
        return memory

    # -- search / list -------------------------------------------------------

    @staticmethod
    def _body_filters(body: dict[str, Any]) -> tuple[list[Predicate], bool]:
        """Top-level ``metadata``/``categories`` narrowing and ``show_expired``."""
        extra: list[Predicate] = []
        if body.get("metadata") is not None:
            extra.append(_compile_metadata(body["metadata"], "metadata"))
        if body.get("categories") is not None:
            extra.append(_compile_categories({"in": body["categories"]}, "categories"))
        return extra, bool(_optional_bool(body, "show_expired"))

    def _visible_locked(self, preds: list[Predicate], show_expired: bool) -> list[dict[str, Any]]:
        today = _now().date()
        return [
            m
            for m in self._memories.values()
            if (show_expired or not _expired(m, today)) and all(p(m) for p in preds)
        ]

    def _search(self, body: dict[str, Any]) -> tuple[int, Any]:
        _check_keys(body, _SEARCH_KEYS, "search")
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise _bad("query: expected a non-empty string")
        pred = _scoped_filters(body)
        top_k = body.get("top_k", DEFAULT_TOP_K)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 1000:
            raise _bad(f"top_k: expected an integer from 1 to 1000, got {top_k!r}")
        threshold = body.get("threshold", DEFAULT_THRESHOLD)
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not 0.0 <= threshold <= 1.0
        ):
            raise _bad(f"threshold: expected a number from 0 to 1, got {threshold!r}")
        extra, show_expired = self._body_filters(body)
        qvec = embed_text(query, self.embedding_dim)
        with self._lock:
            scored: list[tuple[float, int, dict[str, Any]]] = []
            for memory in self._visible_locked([pred, *extra], show_expired):
                dot = sum(a * b for a, b in zip(qvec, self._vectors[memory["id"]], strict=True))
                score = min(1.0, max(0.0, dot))
                if score >= threshold and not math.isnan(score):
                    scored.append((score, self._seq[memory["id"]], memory))
            scored.sort(key=lambda item: (-item[0], item[1]))
            results = [{**copy.deepcopy(m), "score": s} for s, _, m in scored[:top_k]]
        return 200, {"results": results}

    def _get_all(self, rec: RecordedRequest, body: dict[str, Any]) -> tuple[int, Any]:
        _check_keys(body, _GET_ALL_KEYS, "get_all")
        unknown_query = sorted(set(rec.query) - {"page", "page_size"})
        if unknown_query:
            raise _bad(f"get_all: unsupported query parameter(s) {unknown_query}")
        pred = _scoped_filters(body)
        bounds: list[Predicate] = []
        for key, op in (("start_date", "gte"), ("end_date", "lte")):
            if body.get(key) is not None:
                bounds.append(_compile_time("created_at", {op: body[key]}, key))
        page_size = DEFAULT_PAGE_SIZE
        if "page_size" in rec.query:
            raw_size = rec.query["page_size"]
            if not raw_size.isdigit() or int(raw_size) < 1:
                raise _bad(f"page_size: expected a positive integer, got {raw_size!r}")
            page_size = int(raw_size)
        raw_page = rec.query.get("page", "1")
        page = int(raw_page) if raw_page.isdigit() else 0
        extra, show_expired = self._body_filters(body)
        with self._lock:
            matching = self._visible_locked([pred, *extra, *bounds], show_expired)
            matching.sort(key=lambda m: (m["created_at"], self._seq[m["id"]]), reverse=True)
            count = len(matching)
            pages = max(1, math.ceil(count / page_size))
            if page < 1 or page > pages:
                raise FakeMem0Error(404, "Invalid page.")
            start = (page - 1) * page_size
            results = copy.deepcopy(matching[start : start + page_size])

        def link(number: int) -> str:
            query = {**rec.query, "page": str(number), "page_size": str(page_size)}
            return f"{self.base_url}{rec.path}?{urlencode(query)}"

        return 200, {
            "count": count,
            "next": link(page + 1) if page < pages else None,
            "previous": link(page - 1) if page > 1 else None,
            "results": results,
        }

    # -- single memory / delete ---------------------------------------------

    def _get(self, memory_id: str) -> tuple[int, Any]:
        with self._lock:
            memory = self._memories.get(memory_id)
            if memory is None:
                raise FakeMem0Error(404, "Memory not found.")
            return 200, copy.deepcopy(memory)

    def _update(self, memory_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        _check_keys(body, _UPDATE_KEYS, "update")
        text, metadata = body.get("text"), body.get("metadata")
        if text is not None and (not isinstance(text, str) or not text.strip()):
            raise _bad(f"text: expected a non-empty string, got {text!r}")
        if metadata is not None and not isinstance(metadata, dict):
            raise _bad(f"metadata: expected an object, got {metadata!r}")
        expiration = _expiration(body.get("expiration_date"), "expiration_date")
        with self._lock:
            memory = self._memories.get(memory_id)
            if memory is None:
                raise FakeMem0Error(404, "Memory not found.")
            if text is not None:
                memory["memory"] = text
                memory["hash"] = hashlib.md5(text.encode("utf-8")).hexdigest()
                self._vectors[memory_id] = embed_text(text, self.embedding_dim)
            if metadata is not None:
                memory["metadata"] = copy.deepcopy(metadata)
            if "expiration_date" in body:
                memory["expiration_date"] = expiration
            memory["updated_at"] = _iso(_now())
            return 200, copy.deepcopy(memory)

    def _delete(self, memory_id: str, query: dict[str, str]) -> tuple[int, Any]:
        unknown = sorted(set(query) - {"delete_linked"})
        if unknown:
            raise _bad(f"delete: unsupported query parameter(s) {unknown}")
        with self._lock:
            if self._memories.pop(memory_id, None) is None:
                raise FakeMem0Error(404, "Memory not found.")
            self._seq.pop(memory_id, None)
            self._vectors.pop(memory_id, None)
        return 200, {"message": "Memory deleted successfully!"}

    def _delete_all(self, query: dict[str, str]) -> tuple[int, Any]:
        if "filters" in query:
            raise _bad(
                "delete_all: 'filters' arrived in the query string (httpx sends the Python "
                f"repr of the dict: {query['filters']!r}); call delete_all(user_id=...) instead"
            )
        unknown = sorted(set(query) - set(ENTITY_FIELDS))
        if unknown:
            raise _bad(f"delete_all: unsupported query parameter(s) {unknown}")
        scope = {k: v for k, v in query.items() if v}
        if not scope:
            raise _bad("delete_all: at least one of user_id, agent_id, app_id, run_id is required")
        with self._lock:
            doomed = [
                mid
                for mid, m in self._memories.items()
                if all(v == "*" or m.get(k) == v for k, v in scope.items())
            ]
            for mid in doomed:
                del self._memories[mid]
                self._seq.pop(mid, None)
                self._vectors.pop(mid, None)
        return 200, {"message": "Memories deleted successfully!"}
