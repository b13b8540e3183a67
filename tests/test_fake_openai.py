"""Tests for tests/fakes/openai_server.py, driven through the real ``openai`` SDK."""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import OpenAI

from tests.fakes.openai_server import DEFAULT_REPLY, FakeOpenAI

MODEL = "gpt-4o"
EMBED_MODEL = "text-embedding-3-small"
MESSAGES: list[Any] = [
    {"role": "system", "content": "You answer customer questions."},
    {"role": "user", "content": "How do I reset my password?"},
]
# Server-directed retry delay of 1 ms; without it the SDK sleeps ~0.375-0.5 s per retry.
FAST_RETRY = {"retry-after-ms": "1"}


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeOpenAI]:
    # One server and one SDK client per module: building an OpenAI client costs ~50 ms
    # (it loads the CA bundle), while with_options() copies share its HTTP pool.
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def _base_client(_server: FakeOpenAI) -> Iterator[OpenAI]:
    # SDK defaults (max_retries=2) apart from a short timeout.
    with OpenAI(api_key=_server.api_key, base_url=_server.base_url, timeout=5.0) as c:
        yield c


@pytest.fixture
def fake(_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    _server.reset()
    yield _server
    _server.reset()


@pytest.fixture
def client(_base_client: OpenAI, fake: FakeOpenAI) -> OpenAI:
    return _base_client.with_options(max_retries=0)


@pytest.fixture
def default_client(_base_client: OpenAI, fake: FakeOpenAI) -> OpenAI:
    return _base_client


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


# --------------------------------------------------------------------------- chat


def test_default_reply_and_response_shape(fake: FakeOpenAI, client: OpenAI) -> None:
    resp = client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert resp.object == "chat.completion"
    assert resp.model == MODEL
    assert resp.id.startswith("chatcmpl-")
    assert len(resp.choices) == 1
    choice = resp.choices[0]
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.refusal is None
    assert choice.message.content == DEFAULT_REPLY
    assert json.loads(DEFAULT_REPLY) == {
        "answer": "Hello!",
        "confidence": 0.9,
        "reasoning": "test",
    }
    assert resp.usage is not None
    assert resp.usage.prompt_tokens > 0
    assert resp.usage.completion_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    assert fake.chat_requests == [{"model": MODEL, "messages": MESSAGES}]


def test_string_and_json_reply(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reply = "plain text"
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert resp.choices[0].message.content == "plain text"
    assert resp.model == "gpt-4o-mini"

    fake.set_json_reply("Use the reset link.", 0.75, "docs", sources=["kb/1"])
    resp = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    content = resp.choices[0].message.content
    assert content is not None
    assert json.loads(content) == {
        "answer": "Use the reset link.",
        "confidence": 0.75,
        "reasoning": "docs",
        "sources": ["kb/1"],
    }


def test_callable_reply_sees_request(fake: FakeOpenAI, client: OpenAI) -> None:
    seen: list[dict[str, Any]] = []

    def reply(request: dict[str, Any]) -> str:
        seen.append(request)
        return f"echo: {request['messages'][-1]['content']}"

    fake.reply = reply
    response_format: Any = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"answer": {"type": "string"}},
                "required": ["answer"],
                "additionalProperties": False,
            },
        },
    }
    resp = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        response_format=response_format,
        temperature=0.2,
    )

    assert resp.choices[0].message.content == "echo: How do I reset my password?"
    assert len(seen) == 1
    assert seen[0]["model"] == MODEL
    assert seen[0]["messages"] == MESSAGES
    assert seen[0]["response_format"] == response_format
    assert seen[0]["temperature"] == 0.2
    assert fake.chat_requests == seen


def test_reply_callable_crash_is_a_500(fake: FakeOpenAI, client: OpenAI) -> None:
    def reply(request: dict[str, Any]) -> str:
        raise ValueError("boom")

    fake.reply = reply
    with pytest.raises(openai.InternalServerError, match="boom"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert [type(e) for e in fake.errors] == [ValueError]


# --------------------------------------------------------------------------- failures


def test_fail_next_500_without_retries(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.fail_next(500, message="upstream exploded")
    with pytest.raises(openai.InternalServerError) as excinfo:
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    err = excinfo.value
    assert err.status_code == 500
    assert err.message == "Error code: 500 - upstream exploded"
    assert err.type == "server_error"
    assert err.body == {
        "message": "upstream exploded",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert err.request_id is not None

    # The failure was used up: the next call succeeds.
    resp = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert resp.choices[0].message.content == DEFAULT_REPLY
    assert len(fake.chat_requests) == 2


def test_fail_next_500_with_default_retries_succeeds(
    fake: FakeOpenAI, default_client: OpenAI
) -> None:
    assert default_client.max_retries == 2  # the SDK default
    fake.fail_next(500, times=2, headers=FAST_RETRY)
    started = time.monotonic()
    resp = default_client.chat.completions.create(model=MODEL, messages=MESSAGES)
    elapsed = time.monotonic() - started
    assert resp.choices[0].message.content == DEFAULT_REPLY
    assert len(fake.chat_requests) == 3  # two failures + the retry that worked
    assert elapsed < 0.3  # retry-after-ms honoured instead of 0.5 s backoff


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (503, openai.InternalServerError),
    ],
)
def test_fail_next_maps_to_sdk_exceptions(
    fake: FakeOpenAI, client: OpenAI, status: int, exc_type: type[Exception]
) -> None:
    fake.fail_next(status, message="nope")
    with pytest.raises(exc_type, match="nope"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)


def test_rate_limit_failures_queue_and_apply_to_embeddings(
    fake: FakeOpenAI, client: OpenAI
) -> None:
    fake.fail_next(429, times=2, message="slow down")
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as excinfo:
            client.embeddings.create(model=EMBED_MODEL, input="hi")
        assert excinfo.value.code == "rate_limit_exceeded"
    assert len(client.embeddings.create(model=EMBED_MODEL, input="hi").data) == 1
    assert len(fake.embedding_requests) == 3


def test_rejected_response_format_is_400(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.reject_response_formats = {"json_schema"}
    schema_format: Any = {
        "type": "json_schema",
        "json_schema": {"name": "a", "schema": {"type": "object"}},
    }
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.chat.completions.create(
            model=MODEL, messages=MESSAGES, response_format=schema_format
        )
    assert "response_format" in excinfo.value.message
    assert excinfo.value.param == "response_format"
    assert excinfo.value.type == "invalid_request_error"

    # A fallback to json_object still works...
    resp = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, response_format={"type": "json_object"}
    )
    assert resp.choices[0].message.content == DEFAULT_REPLY

    # ...until that is rejected too; plain requests always work.
    fake.reject_response_formats.add("json_object")
    with pytest.raises(openai.BadRequestError, match="response_format"):
        client.chat.completions.create(
            model=MODEL, messages=MESSAGES, response_format={"type": "json_object"}
        )
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    formats = [r.get("response_format", {}).get("type") for r in fake.chat_requests]
    assert formats == ["json_schema", "json_object", "json_object", None]


def test_bad_api_key_is_401(fake: FakeOpenAI, client: OpenAI) -> None:
    bad = client.with_options(api_key="sk-wrong-key")
    with pytest.raises(openai.AuthenticationError) as excinfo:
        bad.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert excinfo.value.code == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        bad.embeddings.create(model=EMBED_MODEL, input="hi")
    assert fake.chat_requests == []
    assert fake.embedding_requests == []


def test_missing_authorization_header_is_401(fake: FakeOpenAI) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        conn.request("GET", "/v1/models")
        resp = conn.getresponse()
        body = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 401
    assert set(body["error"]) == {"message", "type", "param", "code"}


# --------------------------------------------------------------------------- embeddings


def test_embeddings_deterministic_unit_vectors(fake: FakeOpenAI, client: OpenAI) -> None:
    texts = ["reset my password", "billing question", "reset my password"]
    first = client.embeddings.create(model=EMBED_MODEL, input=texts, encoding_format="float")
    again = client.embeddings.create(
        model=EMBED_MODEL, input="reset my password", encoding_format="float"
    )

    assert first.object == "list"
    assert first.model == EMBED_MODEL
    assert [d.index for d in first.data] == [0, 1, 2]
    assert first.usage.prompt_tokens == first.usage.total_tokens == 8
    vectors = [d.embedding for d in first.data]
    for vec in vectors:
        assert len(vec) == fake.embedding_dim == 64
        assert math.isclose(math.sqrt(sum(x * x for x in vec)), 1.0, rel_tol=1e-9)
    assert vectors[0] == vectors[2] == again.data[0].embedding
    assert vectors[0] != vectors[1]


def test_embeddings_base64_default_and_dimensions(fake: FakeOpenAI, client: OpenAI) -> None:
    as_float = client.embeddings.create(
        model=EMBED_MODEL, input="hello world", encoding_format="float"
    )
    # Without encoding_format the SDK asks for base64 and decodes it itself.
    as_b64 = client.embeddings.create(model=EMBED_MODEL, input="hello world")
    assert fake.embedding_requests[1]["encoding_format"] == "base64"
    assert as_b64.data[0].embedding == pytest.approx(as_float.data[0].embedding, abs=1e-6)

    small = client.embeddings.create(model=EMBED_MODEL, input="hello world", dimensions=16)
    assert len(small.data[0].embedding) == 16

    tokens = client.embeddings.create(
        model=EMBED_MODEL, input=[[15339, 1917], [15339]], encoding_format="float"
    )
    assert len(tokens.data) == 2
    assert tokens.data[0].embedding != tokens.data[1].embedding
    assert tokens.usage.prompt_tokens == 3

    with pytest.raises(openai.BadRequestError, match="input"):
        client.embeddings.create(model=EMBED_MODEL, input="")


def test_embeddings_similarity_follows_shared_words(client: OpenAI) -> None:
    texts = [
        "how do I reset my account password",
        "how can I reset my account password",
        "what are your opening hours on sunday",
        "my account password reset how do I",
    ]
    data = client.embeddings.create(model=EMBED_MODEL, input=texts, encoding_format="float").data
    a, b, unrelated, permuted = (d.embedding for d in data)

    assert cosine(a, b) > 0.7
    assert cosine(a, b) > cosine(a, unrelated) + 0.4
    assert a != permuted  # same words, different text -> different vector
    assert cosine(a, permuted) > cosine(a, unrelated)


# --------------------------------------------------------------------------- misc


def test_models_list(client: OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert MODEL in ids
    assert EMBED_MODEL in ids
    assert client.models.retrieve(MODEL).id == MODEL
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_concurrent_requests_with_delay(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.delay = 0.5
    results: list[str | None] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        resp = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"question {i}"}]
        )
        with lock:
            results.append(resp.choices[0].message.content)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    elapsed = time.monotonic() - started

    assert results == [DEFAULT_REPLY] * 4
    assert elapsed < 1.2, f"requests were serialised ({elapsed:.2f}s)"
    contents = sorted(r["messages"][0]["content"] for r in fake.chat_requests)
    assert contents == [f"question {i}" for i in range(4)]


def test_keep_alive_and_content_length(fake: FakeOpenAI) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    headers = {
        "Authorization": f"Bearer {fake.api_key}",
        "Content-Type": "application/json",
    }
    try:
        for i in range(2):  # two requests over one HTTP/1.1 connection
            payload = {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
            conn.request("POST", "/v1/chat/completions", json.dumps(payload), headers)
            resp = conn.getresponse()
            raw = resp.read()
            assert resp.status == 200, i
            assert resp.version == 11
            assert int(resp.headers["Content-Length"]) == len(raw)
            assert resp.headers["Content-Type"] == "application/json"
            assert json.loads(raw)["object"] == "chat.completion"

        conn.request("POST", "/v1/nope", "{}", headers)
        resp = conn.getresponse()
        assert resp.status == 404
        assert json.loads(resp.read())["error"]["type"] == "invalid_request_error"
    finally:
        conn.close()


def test_lifecycle() -> None:
    fake = FakeOpenAI(api_key="sk-other", embedding_dim=8)
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    assert fake.start() is fake
    try:
        assert fake.base_url.startswith("http://127.0.0.1:")
        assert fake.base_url.endswith("/v1")
        with OpenAI(api_key="sk-other", base_url=fake.base_url, max_retries=0) as client:
            emb = client.embeddings.create(model=EMBED_MODEL, input="x")
            assert len(emb.data[0].embedding) == 8
            fake.stop()
            fake.stop()  # idempotent
            with pytest.raises(openai.APIConnectionError):
                client.models.list()
    finally:
        fake.stop()


def test_client_timeout_during_delay(fake: FakeOpenAI, client: OpenAI) -> None:
    fake.delay = 0.3
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.1).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert time.monotonic() - started < 0.3
    assert len(fake.chat_requests) == 1
