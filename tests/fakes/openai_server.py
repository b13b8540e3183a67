"""A fake OpenAI-compatible HTTP server for tests.

It is a real HTTP/1.1 server on 127.0.0.1 (stdlib ``ThreadingHTTPServer``) that the
official ``openai`` SDK can talk to::

    with FakeOpenAI() as fake:
        client = OpenAI(api_key=fake.api_key, base_url=fake.base_url)
        fake.set_json_reply("Hello!", 0.9)
        client.chat.completions.create(model="gpt-4o", messages=[...])
        assert fake.chat_requests[0]["model"] == "gpt-4o"

Endpoints: ``POST /v1/chat/completions`` (non-streaming), ``POST /v1/embeddings``,
``GET /v1/models`` and ``GET /v1/models/{id}``. Every request must carry
``Authorization: Bearer <api_key>``. Errors use the OpenAI error body
``{"error": {"message", "type", "param", "code"}}`` so the SDK raises its usual
exception classes (``BadRequestError``, ``AuthenticationError``, ``RateLimitError``,
``InternalServerError``, ...).

Notes on the SDK (openai 3.51.0):

* It retries 408/409/429/5xx (and connection errors) ``max_retries`` times (default 2),
  sleeping ``0.5 * 2**n`` s minus up to 25 % jitter, unless the response carries
  ``retry-after-ms`` / ``retry-after`` with a value in ``(0, 120]`` seconds, which it
  honours exactly. To keep tests fast pass ``headers={"retry-after-ms": "1"}`` to
  :meth:`FakeOpenAI.fail_next`, or build the client with ``max_retries=0``.
  ``x-should-retry: true|false`` overrides the status-based decision.
* ``embeddings.create()`` without ``encoding_format`` sends ``"base64"`` and decodes
  little-endian float32 itself, so this fake answers base64 when asked.
* Timeouts are retried too: with ``delay`` longer than the client timeout and default
  retries, one ``create()`` shows up three times in ``chat_requests``.
* Constructing ``OpenAI(...)`` costs ~50 ms (it loads the CA bundle even for http://);
  share one client and use ``client.with_options(max_retries=0, api_key=...)`` copies,
  which reuse its connection pool (don't ``close()`` a copy: that closes the pool).

A chat request takes its ``reply``, ``reject_response_formats``, ``delay`` and queued
failure when it arrives, before sleeping ``delay``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
import math
import random
import re
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from tests.fakes.loopback import JsonHandler, LoopbackServer

__all__ = [
    "DEFAULT_REPLY",
    "FakeAPIError",
    "FakeOpenAI",
    "embed_text",
    "embed_token_ids",
]

log = logging.getLogger(__name__)

DEFAULT_REPLY: str = json.dumps({"answer": "Hello!", "confidence": 0.9, "reasoning": "test"})

DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-4o",
    "gpt-4o-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
)

_ERROR_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", None),
    408: ("timeout", None),
    409: ("invalid_request_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}

_WORD_RE = re.compile(r"\w+", re.UNICODE)
_TOKEN_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class FakeAPIError(Exception):
    """Raised inside the handler to answer with an OpenAI-style error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        default_type, default_code = _ERROR_TYPES.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        self.status = status
        self.message = message
        self.type = error_type or default_type
        self.param = param
        self.code = code if code is not None else default_code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


@dataclass(frozen=True)
class _Failure:
    status: int
    message: str
    headers: dict[str, str]


# --------------------------------------------------------------------------- embeddings


def _hash_bytes(data: str) -> bytes:
    return hashlib.blake2b(data.encode("utf-8"), digest_size=16).digest()


def _add_feature(vec: list[float], feature: str, weight: float) -> None:
    """Feature hashing: each feature adds +-weight to two pseudo-random slots."""
    digest = _hash_bytes(feature)
    dim = len(vec)
    for i in (0, 8):
        idx = int.from_bytes(digest[i : i + 4], "little") % dim
        sign = 1.0 if digest[i + 4] & 1 else -1.0
        vec[idx] += sign * weight


def _embed_tokens(tokens: list[str], exact: str, dim: int) -> list[float]:
    """Deterministic unit vector: hashed bag of words + bigrams + a small exact-text term.

    Texts sharing words share slots, so their cosine similarity is higher than that
    of unrelated texts; the bigram and exact-text terms make different texts (even
    word permutations) give different vectors.
    """
    vec = [0.0] * dim
    for tok in tokens:
        _add_feature(vec, "w:" + tok, 1.0)
    for a, b in itertools.pairwise(tokens):
        _add_feature(vec, f"b:{a} {b}", 0.3)
    # Small dense component unique to the exact input.
    rng = random.Random(_hash_bytes("x:" + exact))
    scale = 0.05 * math.sqrt(max(len(tokens), 1))
    for i in range(dim):
        vec[i] += rng.gauss(0.0, 1.0) * scale / math.sqrt(dim)
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:  # pragma: no cover - the dense term makes this ~impossible
        vec[0], norm = 1.0, 1.0
    return [v / norm for v in vec]


def embed_text(text: str, dim: int) -> list[float]:
    """The fake's embedding of ``text`` (exposed so tests can compute expected vectors)."""
    tokens = [w.lower() for w in _WORD_RE.findall(text)]
    if not tokens:
        tokens = [c for c in text if not c.isspace()] or [text]
    return _embed_tokens(tokens, "s:" + text, dim)


def embed_token_ids(ids: list[int], dim: int) -> list[float]:
    return _embed_tokens([f"#{i}" for i in ids], "t:" + ",".join(map(str, ids)), dim)


def _count_tokens(text: str) -> int:
    return len(_TOKEN_RE.findall(text))


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return " ".join(parts)
    return ""


# --------------------------------------------------------------------------- server


class _Handler(JsonHandler["FakeOpenAI"]):
    server_version = "FakeOpenAI/1.0"
    log_label = "fake-openai"

    def dispatch(self) -> None:
        fake = self.server.fake
        headers: dict[str, str]
        try:
            status, payload, headers = self._route(fake)
        except FakeAPIError as err:
            status, payload, headers = err.status, err.body(), err.headers
        except Exception as exc:  # keep the wire protocol intact on fake bugs
            log.exception("fake-openai handler crashed")
            fake._record_error(exc)
            crash = FakeAPIError(500, f"Fake server error: {exc!r}")
            status, payload, headers = crash.status, crash.body(), crash.headers
        # If the client went away (e.g. its timeout fired during `delay`), send_json
        # just marks the connection for closing.
        request_id = ("x-request-id", "req_" + uuid.uuid4().hex)
        self.send_json(status, payload, [request_id, *headers.items()])

    def _route(self, fake: FakeOpenAI) -> tuple[int, dict[str, Any], dict[str, str]]:
        # Always consume the body first so a keep-alive connection stays in sync.
        try:
            raw = self.read_body()
        except (ValueError, OSError) as exc:
            self.close_connection = True
            raise FakeAPIError(400, f"Could not read request body: {exc}") from exc
        fake._check_auth(self.headers.get("Authorization"))
        path = self.path.split("?", 1)[0].rstrip("/")
        route = (self.command, path)
        if route == ("POST", "/v1/chat/completions"):
            return fake._chat_completions(_parse_json(raw))
        if route == ("POST", "/v1/embeddings"):
            return fake._embeddings(_parse_json(raw))
        if route == ("GET", "/v1/models"):
            return fake._list_models()
        if self.command == "GET" and path.startswith("/v1/models/"):
            return fake._retrieve_model(path[len("/v1/models/") :])
        raise FakeAPIError(404, f"Invalid URL ({self.command} {self.path})")


def _parse_json(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FakeAPIError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            f"but what was sent was not valid JSON.) [{exc}]",
        ) from exc
    if not isinstance(data, dict):
        raise FakeAPIError(400, "The request body must be a JSON object.")
    return cast(dict[str, Any], data)


# --------------------------------------------------------------------------- public class


class FakeOpenAI(LoopbackServer):
    """A fake OpenAI API on 127.0.0.1 for tests; see the module docstring.

    ``base_url`` is ``http://127.0.0.1:PORT/v1``; it, ``port``, ``start()``, ``stop()``
    and the context manager come from :class:`~tests.fakes.loopback.LoopbackServer`.
    """

    handler_class = _Handler
    thread_label = "fake-openai"
    url_suffix = "/v1"

    def __init__(self, api_key: str = "sk-test", *, embedding_dim: int = 64) -> None:
        if embedding_dim < 1:
            raise ValueError("embedding_dim must be >= 1")
        self.api_key: str = api_key
        self.embedding_dim: int = embedding_dim
        self.reply: str | Callable[[dict[str, Any]], str] = DEFAULT_REPLY
        self.delay: float = 0.0
        self.reject_response_formats: set[str] = set()
        self.models: list[str] = list(DEFAULT_MODELS)
        self.chat_requests: list[dict[str, Any]] = []
        self.embedding_requests: list[dict[str, Any]] = []
        #: Exceptions raised inside the server (e.g. by a ``reply`` callable); each was
        #: answered with a 500.
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()
        self._failures: deque[_Failure] = deque()

    # -- configuration -----------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        message: str = "fake failure",
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` API requests (chat, embeddings or models) with ``status``.

        Calls queue up in order. The request is still recorded in ``chat_requests`` /
        ``embedding_requests``, so retries are visible. ``headers`` are added to the error
        response, e.g. ``{"retry-after-ms": "1"}`` to make SDK retries near-instant.
        """
        if not 400 <= status <= 599:
            raise ValueError("status must be a 4xx or 5xx code")
        failure = _Failure(status, message, dict(headers or {}))
        with self._lock:
            self._failures.extend([failure] * times)

    def set_json_reply(
        self, answer: str, confidence: float, reasoning: str = "", **extra: Any
    ) -> None:
        self.reply = json.dumps(
            {
                "answer": answer,
                "confidence": confidence,
                "reasoning": reasoning,
                **extra,
            }
        )

    def reset(self) -> None:
        """Back to the state after construction, keeping the server running.

        Clears recorded requests, errors and queued failures, and restores ``reply``,
        ``delay``, ``reject_response_formats`` and ``models`` to their defaults
        (``api_key`` and ``embedding_dim`` are kept). Handy with one server per module.
        """
        with self._lock:
            self.reply = DEFAULT_REPLY
            self.delay = 0.0
            self.reject_response_formats = set()
            self.models = list(DEFAULT_MODELS)
            self.chat_requests.clear()
            self.embedding_requests.clear()
            self.errors.clear()
            self._failures.clear()

    # -- request handling (called from server threads) ----------------------

    def _record_error(self, exc: BaseException) -> None:
        with self._lock:
            self.errors.append(exc)

    def _check_auth(self, header: str | None) -> None:
        if not header:
            raise FakeAPIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.api_key:
            shown = key.strip()
            masked = (
                shown[:3] + "*" * max(len(shown) - 7, 0) + shown[-4:] if len(shown) > 8 else "***"
            )
            raise FakeAPIError(
                401, f"Incorrect API key provided: {masked}.", code="invalid_api_key"
            )

    def _pop_failure_locked(self) -> _Failure | None:
        return self._failures.popleft() if self._failures else None

    @staticmethod
    def _raise_failure(failure: _Failure | None) -> None:
        if failure is not None:
            raise FakeAPIError(failure.status, failure.message, headers=failure.headers)

    def _maybe_fail(self) -> None:
        with self._lock:
            failure = self._pop_failure_locked()
        self._raise_failure(failure)

    def _chat_completions(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        # Snapshot the configuration when the request arrives, so a request still
        # sleeping in `delay` (e.g. one whose client timed out) cannot consume a
        # failure or call a reply configured later, say by the next test.
        with self._lock:
            self.chat_requests.append(body)
            failure = self._pop_failure_locked()
            reply = self.reply
            rejected = set(self.reject_response_formats)
            delay = self.delay
        if delay > 0:
            time.sleep(delay)
        self._raise_failure(failure)

        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise FakeAPIError(400, "you must provide a model parameter", param="model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise FakeAPIError(
                400,
                "Invalid 'messages': empty array. Expected an array with minimum length 1.",
                param="messages",
                code="empty_array",
            )
        if body.get("stream"):
            raise FakeAPIError(400, "FakeOpenAI does not support stream=true.", param="stream")
        response_format = body.get("response_format")
        if isinstance(response_format, dict):
            rf_type = response_format.get("type")
            if rf_type in rejected:
                raise FakeAPIError(
                    400,
                    f"Invalid parameter: 'response_format' of type '{rf_type}' is not "
                    "supported with this model.",
                    param="response_format",
                )
        n = body.get("n") or 1
        if not isinstance(n, int) or n < 1:
            raise FakeAPIError(400, f"Invalid value for 'n': {n!r}.", param="n")

        content = reply(body) if callable(reply) else reply
        if not isinstance(content, str):
            raise TypeError(f"FakeOpenAI.reply must produce a str, got {type(content).__name__}")

        prompt_tokens = sum(
            _count_tokens(_message_text(m.get("content"))) + 4
            for m in messages
            if isinstance(m, dict)
        )
        completion_tokens = _count_tokens(content) * n
        payload = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": i,
                    "message": {
                        "role": "assistant",
                        "content": content,
                        "refusal": None,
                        "annotations": [],
                    },
                    "finish_reason": "stop",
                    "logprobs": None,
                }
                for i in range(n)
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }
        return 200, payload, {"openai-processing-ms": str(int(delay * 1000))}

    def _embeddings(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._lock:
            self.embedding_requests.append(body)
            failure = self._pop_failure_locked()
        self._raise_failure(failure)

        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise FakeAPIError(400, "you must provide a model parameter", param="model")
        dim = body.get("dimensions")
        if dim is None:
            dim = self.embedding_dim
        elif isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise FakeAPIError(
                400, f"Invalid value for 'dimensions' = {dim!r}.", param="dimensions"
            )
        encoding_format = body.get("encoding_format") or "float"
        if encoding_format not in ("float", "base64"):
            raise FakeAPIError(
                400,
                f"Invalid value for 'encoding_format' = {encoding_format!r}. "
                "Must be 'float' or 'base64'.",
                param="encoding_format",
            )

        vectors, prompt_tokens = self._embed_input(body.get("input"), dim)
        data: list[dict[str, Any]] = []
        for i, vec in enumerate(vectors):
            embedding: list[float] | str
            if encoding_format == "base64":
                embedding = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode("ascii")
            else:
                embedding = vec
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        payload = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }
        return 200, payload, {}

    @staticmethod
    def _embed_input(value: Any, dim: int) -> tuple[list[list[float]], int]:
        def invalid(why: str) -> FakeAPIError:
            return FakeAPIError(400, f"'$.input' is invalid: {why}", param="input")

        def is_int(x: Any) -> bool:
            return isinstance(x, int) and not isinstance(x, bool)

        if isinstance(value, str):
            items: list[str | list[int]] = [value]
        elif isinstance(value, list) and value:
            if all(isinstance(x, str) for x in value):
                items = list(value)
            elif all(is_int(x) for x in value):
                items = [list(value)]
            elif all(isinstance(x, list) and x and all(is_int(t) for t in x) for x in value):
                items = list(value)
            else:
                raise invalid("expected a string, an array of strings, or (arrays of) token ids")
        else:
            raise invalid("expected a non-empty string or array")

        vectors: list[list[float]] = []
        tokens = 0
        for item in items:
            if isinstance(item, str):
                if item == "":
                    raise invalid("input strings must not be empty")
                vectors.append(embed_text(item, dim))
                tokens += max(_count_tokens(item), 1)
            else:
                vectors.append(embed_token_ids(item, dim))
                tokens += len(item)
        return vectors, tokens

    def _list_models(self) -> tuple[int, dict[str, Any], dict[str, str]]:
        self._maybe_fail()
        return (
            200,
            {"object": "list", "data": [self._model_obj(m) for m in self.models]},
            {},
        )

    def _retrieve_model(self, model_id: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        self._maybe_fail()
        if model_id not in self.models:
            raise FakeAPIError(
                404,
                f"The model '{model_id}' does not exist or you do not have access to it.",
                param="model",
                code="model_not_found",
            )
        return 200, self._model_obj(model_id), {}

    @staticmethod
    def _model_obj(model_id: str) -> dict[str, Any]:
        return {
            "id": model_id,
            "object": "model",
            "created": 1_700_000_000,
            "owned_by": "system",
        }
