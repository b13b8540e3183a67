"""Tests for tests/fakes/gpt_trainer.py, driven through the real ``requests`` library."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import requests

from tests.fakes.gpt_trainer import DEFAULT_ANSWER, FakeGPTTrainer

KEY = "gt-key-0123456789"
BOT = "chatbot-0001"


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeGPTTrainer]:
    with FakeGPTTrainer() as server:
        yield server


@pytest.fixture
def fake(_server: FakeGPTTrainer) -> Iterator[FakeGPTTrainer]:
    _server.reset()
    yield _server
    errors = list(_server.errors)
    _server.reset()
    assert errors == []


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {KEY}"
        yield session


def create_session(fake: FakeGPTTrainer, http: requests.Session, bot: str = BOT) -> str:
    r = http.post(f"{fake.base_url}/chatbot/{bot}/session/create", json={}, timeout=2)
    assert r.status_code == 200, r.text
    return str(r.json()["uuid"])


def stream(
    fake: FakeGPTTrainer, http: requests.Session, session: str, query: str
) -> tuple[requests.Response, list[bytes]]:
    with http.post(
        f"{fake.base_url}/session/{session}/message/stream",
        json={"query": query},
        stream=True,
        timeout=2,
    ) as r:
        if r.status_code != 200:
            r.content  # noqa: B018  (read the error body before the response is closed)
            return r, []
        return r, list(r.iter_content(chunk_size=None))


def test_base_url_and_session_create(fake: FakeGPTTrainer, http: requests.Session) -> None:
    assert fake.base_url == f"http://127.0.0.1:{fake.port}/api/v1"
    r = http.post(f"{fake.base_url}/chatbot/{BOT}/session/create", timeout=2)  # no body
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"uuid", "created_at", "modified_at"}
    datetime.fromisoformat(body["created_at"])
    assert fake.session_ids() == [body["uuid"]]
    assert fake.queries(body["uuid"]) == []
    rec = fake.requests[-1]
    assert (rec.method, rec.path, rec.status, rec.json) == (
        "POST",
        f"/api/v1/chatbot/{BOT}/session/create",
        200,
        None,
    )
    assert rec.headers["Authorization"] == f"Bearer {KEY}"
    assert abs(rec.at - time.time()) < 2


def test_two_messages_keep_history(fake: FakeGPTTrainer, http: requests.Session) -> None:
    seen: list[tuple[str, str, list[str]]] = []

    def answer(query: str, session: str, earlier: list[str]) -> str:
        seen.append((query, session, list(earlier)))
        return f"answer {len(earlier) + 1} to {query}"

    fake.answer = answer
    s = create_session(fake, http)
    other = create_session(fake, http)
    r1, c1 = stream(fake, http, s, "first question")
    _, c2 = stream(fake, http, s, "second question")
    _, c3 = stream(fake, http, other, "elsewhere")

    assert r1.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert r1.headers["Transfer-Encoding"] == "chunked"
    assert b"".join(c1).decode() == "answer 1 to first question"
    assert b"".join(c2).decode() == "answer 2 to second question"
    assert b"".join(c3).decode() == "answer 1 to elsewhere"
    assert seen == [
        ("first question", s, []),
        ("second question", s, ["first question"]),
        ("elsewhere", other, []),
    ]
    assert fake.queries(s) == ["first question", "second question"]
    assert fake.queries(other) == ["elsewhere"]
    assert fake.session_ids() == [s, other]
    rec = fake.calls("POST", r"/message/stream$")[1]
    assert rec.json == {"query": "second question"}
    assert (rec.status, rec.sent, rec.cut) == (200, "answer 2 to second question", False)


def test_stream_arrives_in_several_timed_chunks(
    fake: FakeGPTTrainer, http: requests.Session
) -> None:
    fake.chunk_size = 4
    fake.chunk_delay = 0.03
    fake.set_answer("0123456789abcdefghij")  # 5 chunks of 4
    s = create_session(fake, http)
    arrivals: list[float] = []
    chunks: list[bytes] = []
    with http.post(
        f"{fake.base_url}/session/{s}/message/stream",
        json={"query": "q"},
        stream=True,
        timeout=2,
    ) as r:
        for chunk in r.iter_content(chunk_size=None):
            arrivals.append(time.monotonic())
            chunks.append(chunk)
    assert chunks == [b"0123", b"4567", b"89ab", b"cdef", b"ghij"]
    assert arrivals[-1] - arrivals[0] >= 4 * 0.03 * 0.8


def test_default_answer_and_utf8(fake: FakeGPTTrainer, http: requests.Session) -> None:
    s = create_session(fake, http)
    _, chunks = stream(fake, http, s, "hello")
    assert b"".join(chunks).decode() == DEFAULT_ANSWER
    assert len(chunks) > 1
    fake.set_answer("Grüße, señor — ünïcödé ✓")
    _, chunks = stream(fake, http, s, "again")
    assert b"".join(chunks).decode("utf-8") == "Grüße, señor — ünïcödé ✓"


def test_delay_before_first_chunk(fake: FakeGPTTrainer, http: requests.Session) -> None:
    fake.delay = 0.2
    s = create_session(fake, http)
    start = time.monotonic()
    with http.post(
        f"{fake.base_url}/session/{s}/message/stream",
        json={"query": "q"},
        stream=True,
        timeout=2,
    ) as r:
        headers_at = time.monotonic() - start
        first = next(r.iter_content(chunk_size=None))
        first_at = time.monotonic() - start
    assert first == DEFAULT_ANSWER[:8].encode()
    assert headers_at < 0.15  # headers go out before the delay
    assert first_at >= 0.18


def test_delay_longer_than_read_timeout_fails_while_iterating(
    fake: FakeGPTTrainer, http: requests.Session
) -> None:
    fake.delay = 0.5
    s = create_session(fake, http)
    with http.post(
        f"{fake.base_url}/session/{s}/message/stream",
        json={"query": "q"},
        stream=True,
        timeout=(2, 0.1),
    ) as r:
        assert r.status_code == 200
        with pytest.raises(requests.exceptions.ConnectionError) as info:
            list(r.iter_content(chunk_size=None))
    assert "Read timed out" in str(info.value)
    assert fake.queries(s) == ["q"]


def test_wrong_or_missing_key_is_401(fake: FakeGPTTrainer) -> None:
    url = f"{fake.base_url}/chatbot/{BOT}/session/create"
    r = requests.post(url, headers={"Authorization": "Bearer nope"}, json={}, timeout=2)
    assert r.status_code == 401
    assert r.headers["Content-Type"] == "application/json"
    assert "detail" in r.json()
    r = requests.post(url, json={}, timeout=2)
    assert r.status_code == 401
    r = requests.get(f"{fake.base_url}/chatbot/{BOT}", headers={"Authorization": KEY}, timeout=2)
    assert r.status_code == 401  # no "Bearer" scheme
    assert fake.session_ids() == []
    assert [rec.status for rec in fake.requests] == [401, 401, 401]


def test_unknown_chatbot_session_and_path(fake: FakeGPTTrainer, http: requests.Session) -> None:
    base = fake.base_url
    assert http.post(f"{base}/chatbot/nope/session/create", json={}, timeout=2).status_code == 404
    assert http.get(f"{base}/chatbot/nope", timeout=2).status_code == 404
    assert http.get(f"{base}/chatbot/nope/sessions", timeout=2).status_code == 404
    r, _ = stream(fake, http, "no-such-session", "q")
    assert r.status_code == 404
    assert "detail" in r.json()
    assert http.get(f"{base}/elsewhere", timeout=2).status_code == 404
    assert http.get(f"{base}/chatbot/{BOT}/session/create", timeout=2).status_code == 405
    assert http.delete(f"{base}/chatbot/{BOT}", timeout=2).status_code == 405


def test_expired_session_is_404(fake: FakeGPTTrainer, http: requests.Session) -> None:
    s = create_session(fake, http)
    stream(fake, http, s, "before")
    fake.expire_session(s)
    r, _ = stream(fake, http, s, "after")
    assert r.status_code == 404
    assert r.json() == {"detail": "Session not found."}
    assert fake.queries(s) == ["before"]
    assert http.get(f"{fake.base_url}/chatbot/{BOT}/sessions", timeout=2).json() == []
    with pytest.raises(KeyError):
        fake.expire_session("unknown")


def test_bad_stream_body_is_400(_server: FakeGPTTrainer, http: requests.Session) -> None:
    _server.reset()
    s = create_session(_server, http)
    url = f"{_server.base_url}/session/{s}/message/stream"
    assert http.post(url, json={"question": "x"}, timeout=2).status_code == 400
    assert http.post(url, data=b"not json", timeout=2).status_code == 400
    assert len(_server.errors) == 2
    assert _server.queries(s) == []
    _server.reset()


def test_fail_next(fake: FakeGPTTrainer, http: requests.Session) -> None:
    fake.fail_next("POST", r"/session/create$", 503, times=2)
    url = f"{fake.base_url}/chatbot/{BOT}/session/create"
    for _ in range(2):
        r = http.post(url, json={}, timeout=2)
        assert r.status_code == 503
        assert r.json() == {"detail": "fake failure"}
    assert fake.session_ids() == []  # not applied
    s = create_session(fake, http)

    fake.fail_next("*", r"/message/stream$", 429)
    r, _ = stream(fake, http, s, "dropped")
    assert r.status_code == 429
    assert fake.queries(s) == []  # not applied
    r, chunks = stream(fake, http, s, "kept")
    assert r.status_code == 200
    assert b"".join(chunks).decode() == DEFAULT_ANSWER
    assert fake.queries(s) == ["kept"]
    assert [rec.status for rec in fake.requests] == [503, 503, 200, 429, 200]


def test_cut_stream_raises_chunked_encoding_error(
    fake: FakeGPTTrainer, http: requests.Session
) -> None:
    fake.set_answer("abcdefghijklmnopqrstuvwxyz")
    s = create_session(fake, http)
    fake.cut_stream_next(10)
    received: list[bytes] = []
    with http.post(
        f"{fake.base_url}/session/{s}/message/stream",
        json={"query": "cut me"},
        stream=True,
        timeout=2,
    ) as r:
        assert r.status_code == 200
        with pytest.raises(requests.exceptions.ChunkedEncodingError) as info:
            for chunk in r.iter_content(chunk_size=None):
                received.append(chunk)
    assert "Response ended prematurely" in str(info.value)
    assert received == [b"abcdefgh", b"ij"]
    assert fake.queries(s) == ["cut me"]
    rec = fake.calls("POST", r"/message/stream$")[-1]
    assert (rec.status, rec.sent, rec.cut) == (200, "abcdefghij", True)

    # The next stream on the same requests.Session is whole again.
    _, chunks = stream(fake, http, s, "whole")
    assert b"".join(chunks) == b"abcdefghijklmnopqrstuvwxyz"
    assert fake.queries(s) == ["cut me", "whole"]


def test_cut_stream_after_zero_chars(fake: FakeGPTTrainer, http: requests.Session) -> None:
    s = create_session(fake, http)
    fake.cut_stream_next(0)
    with (
        http.post(
            f"{fake.base_url}/session/{s}/message/stream",
            json={"query": "q"},
            stream=True,
            timeout=2,
        ) as r,
        pytest.raises(requests.exceptions.ChunkedEncodingError),
    ):
        r.content  # noqa: B018
    assert fake.queries(s) == ["q"]


def test_get_chatbot_and_sessions(fake: FakeGPTTrainer, http: requests.Session) -> None:
    r = http.get(f"{fake.base_url}/chatbot/{BOT}", timeout=2)
    assert r.status_code == 200
    bot = r.json()
    assert bot["uuid"] == BOT
    assert set(bot) == {"uuid", "name", "created_at", "modified_at", "meta"}
    assert bot["meta"] == {
        "visibility": "private",
        "rate_limit": [20, 240],
        "rate_limit_message": "Too many messages",
        "show_citations": False,
    }
    fake.add_chatbot("chatbot-0002", name="Second")
    assert http.get(f"{fake.base_url}/chatbot/chatbot-0002", timeout=2).json()["name"] == "Second"

    a = create_session(fake, http)
    b = create_session(fake, http)
    c = create_session(fake, http, bot="chatbot-0002")
    listed = http.get(f"{fake.base_url}/chatbot/{BOT}/sessions", timeout=2).json()
    assert [item["uuid"] for item in listed] == [a, b]
    assert set(listed[0]) == {"uuid", "created_at", "modified_at"}
    listed = http.get(f"{fake.base_url}/chatbot/chatbot-0002/sessions", timeout=2).json()
    assert [item["uuid"] for item in listed] == [c]
    assert fake.session_ids() == [a, b, c]


def test_stop_is_fast_even_mid_stream() -> None:
    fake = FakeGPTTrainer(chunk_delay=5.0, chunk_size=1)
    fake.start()
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {fake.api_key}"
    s = create_session(fake, http)
    r = http.post(
        f"{fake.base_url}/session/{s}/message/stream", json={"query": "q"}, stream=True, timeout=2
    )
    it = r.iter_content(chunk_size=None)
    assert next(it) == DEFAULT_ANSWER[:1].encode()
    start = time.monotonic()
    fake.stop()
    assert time.monotonic() - start < 0.5
    with pytest.raises(requests.exceptions.RequestException):
        list(it)
    r.close()
    http.close()
