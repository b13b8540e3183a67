"""Tests for tests/fakes/mem0_platform.py, driven through the real ``mem0.MemoryClient``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before mem0 is imported: no PostHog telemetry, and its config.json (written on import)
# goes to a scratch directory instead of ~/.mem0.
os.environ.setdefault("MEM0_TELEMETRY", "False")
os.environ.setdefault("MEM0_DIR", str(Path(tempfile.gettempdir()) / "intercom-responder-mem0"))

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from mem0 import MemoryClient  # type: ignore[import-untyped]
from mem0.exceptions import MemoryError as Mem0Error  # type: ignore[import-untyped]
from mem0.exceptions import (
    MemoryNotFoundError,
    NetworkError,
    RateLimitError,
    ValidationError,
)

from tests.fakes.mem0_platform import FakeMem0Platform

U1 = {"AND": [{"user_id": "u1"}]}


@pytest.fixture(scope="module")
def _server() -> Iterator[FakeMem0Platform]:
    with FakeMem0Platform() as server:
        yield server


@pytest.fixture(scope="module")
def _http() -> Iterator[httpx.Client]:
    # Building an httpx.Client costs ~0.2 s (CA bundle), so share one; MemoryClient
    # re-applies its base_url and auth headers to it on construction.
    with httpx.Client(timeout=2.0) as http:
        yield http


@pytest.fixture
def fake(_server: FakeMem0Platform, _http: httpx.Client) -> Iterator[FakeMem0Platform]:
    _server.reset()
    _http.timeout = httpx.Timeout(2.0)
    yield _server
    errors = list(_server.errors)
    _server.reset()
    assert errors == [], "the client sent something the fake refused"


@pytest.fixture
def client(fake: FakeMem0Platform, _http: httpx.Client) -> MemoryClient:
    return MemoryClient(api_key=fake.api_key, host=fake.base_url, client=_http)


def add_text(client: MemoryClient, text: str, **kwargs: Any) -> str:
    """Add one raw memory for u1 (unless overridden) and return its id."""
    kwargs.setdefault("user_id", "u1")
    resp = client.add([{"role": "user", "content": text}], infer=False, **kwargs)
    results: list[dict[str, Any]] = resp["results"]
    assert len(results) == 1
    return str(results[0]["id"])


# --------------------------------------------------------------------------- auth


def test_constructor_pings_with_token_auth(fake: FakeMem0Platform, client: MemoryClient) -> None:
    assert client.user_email == fake.user_email
    assert (client.org_id, client.project_id) == (fake.org_id, fake.project_id)
    ping = fake.requests[0]
    assert (ping.method, ping.path, ping.status) == ("GET", "/v1/ping/", 200)
    assert ping.headers["Authorization"] == f"Token {fake.api_key}"
    assert ping.headers["Mem0-User-Id"]  # md5 of the key


def test_wrong_key_raises_from_constructor(fake: FakeMem0Platform, _http: httpx.Client) -> None:
    with pytest.raises(ValueError, match="Invalid API key"):
        MemoryClient(api_key="m0-wrong", host=fake.base_url, client=_http)
    assert [r.status for r in fake.requests] == [401]
    assert len(fake.errors) == 1 and "401" in fake.errors[0]
    fake.errors.clear()


# --------------------------------------------------------------------------- add / get_all


def test_add_infer_false_with_metadata_then_filtered_get_all(
    fake: FakeMem0Platform, client: MemoryClient
) -> None:
    resp = client.add(
        [
            {"role": "system", "content": "You are a support bot."},
            {"role": "user", "content": "Customer prefers email over phone."},
        ],
        user_id="u1",
        infer=False,
        metadata={"conversation_id": "c1", "source": "intercom"},
    )
    assert resp["status"] == "SUCCEEDED"
    (added,) = resp["results"]
    assert added["event"] == "ADD"
    assert added["memory"] == "Customer prefers email over phone."
    body = fake.requests[-1].json
    assert body["infer"] is False and body["user_id"] == "u1"
    # Noise: same user other conversation, other user same conversation.
    add_text(client, "Customer is on the Pro plan.", metadata={"conversation_id": "c2"})
    add_text(client, "Other customer text.", user_id="u2", metadata={"conversation_id": "c1"})

    page = client.get_all(
        filters={"AND": [{"user_id": "u1"}, {"metadata": {"conversation_id": "c1"}}]}
    )
    assert page["count"] == 1 and page["next"] is None and page["previous"] is None
    (memory,) = page["results"]
    assert memory["id"] == added["id"]
    assert memory["memory"] == "Customer prefers email over phone."
    assert memory["user_id"] == "u1" and memory["agent_id"] is None
    assert memory["metadata"] == {"conversation_id": "c1", "source": "intercom"}
    assert datetime.fromisoformat(memory["created_at"]).tzinfo is not None
    assert fake.requests[-1].path == "/v3/memories/"
    assert client.get(added["id"]) == memory
    # A flat filter object is an implicit AND; OR widens.
    flat = client.get_all(filters={"user_id": "u1", "metadata": {"conversation_id": "c1"}})
    assert [m["id"] for m in flat["results"]] == [added["id"]]
    either = client.get_all(filters={"OR": [{"user_id": "u1"}, {"user_id": "u2"}]})
    assert either["count"] == 3


def test_default_add_is_queued_but_stored_at_once(
    fake: FakeMem0Platform, client: MemoryClient
) -> None:
    resp = client.add("I use the dark theme", user_id="u1")
    assert resp["status"] == "PENDING" and resp["event_id"]
    assert "infer" not in fake.requests[-1].json
    assert [m["memory"] for m in fake.memories] == ["I use the dark theme"]
    # async_mode still passes through as a kwarg and wins over infer.
    sync = client.add("Second", user_id="u1", async_mode=False)
    assert sync["status"] == "SUCCEEDED" and len(sync["results"]) == 1


def test_get_all_pagination(fake: FakeMem0Platform, client: MemoryClient) -> None:
    for i in range(3):
        add_text(client, f"fact {i}")
    first = client.get_all(filters=U1, page=1, page_size=2)
    assert fake.requests[-1].query == {"page": "1", "page_size": "2"}
    assert first["count"] == 3 and len(first["results"]) == 2
    assert first["next"].endswith("page=2&page_size=2") and first["previous"] is None
    second = client.get_all(filters=U1, page=2, page_size=2)
    assert len(second["results"]) == 1 and second["next"] is None
    seen = [m["memory"] for m in first["results"] + second["results"]]
    assert seen == ["fact 2", "fact 1", "fact 0"]  # newest first
    with pytest.raises(MemoryNotFoundError):
        client.get_all(filters=U1, page=3, page_size=2)


# --------------------------------------------------------------------------- search


def test_search_ranks_related_memory_first_and_honours_top_k(
    fake: FakeMem0Platform, client: MemoryClient
) -> None:
    password = add_text(client, "The customer cannot reset their account password")
    add_text(client, "The customer likes the new dashboard colours")
    add_text(client, "Invoices are sent on the first of the month")
    add_text(client, "reset password account", user_id="u2")  # other user: never returned

    found = client.search("how to reset my password", filters=U1, threshold=0.0)
    results = found["results"]
    assert results[0]["id"] == password
    assert {r["user_id"] for r in results} == {"u1"}
    scores = [r["score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert 0.0 < scores[0] <= 1.0 and scores[0] > scores[-1]

    top = client.search("how to reset my password", filters=U1, top_k=1, threshold=0.0)
    assert [r["id"] for r in top["results"]] == [password]
    assert fake.requests[-1].json == {
        "query": "how to reset my password",
        "filters": U1,
        "top_k": 1,
        "threshold": 0.0,
    }
    assert client.search("reset password", filters=U1, threshold=0.99)["results"] == []


# --------------------------------------------------------------------------- delete


def test_delete_and_delete_all(fake: FakeMem0Platform, client: MemoryClient) -> None:
    first = add_text(client, "one")
    add_text(client, "two")
    add_text(client, "three", user_id="u2")

    assert client.delete(first) == {"message": "Memory deleted successfully!"}
    assert fake.requests[-1].path == f"/v1/memories/{first}/"
    with pytest.raises(MemoryNotFoundError):
        client.get(first)

    assert client.delete_all(user_id="u1")["message"]
    assert fake.requests[-1].query == {"user_id": "u1"}
    assert [m["memory"] for m in fake.memories] == ["three"]


def test_delete_all_with_filters_is_refused(fake: FakeMem0Platform, client: MemoryClient) -> None:
    add_text(client, "keep me")
    with pytest.raises(ValidationError, match="Python repr"):
        client.delete_all(filters={"user_id": "u1"})
    assert len(fake.memories) == 1
    assert len(fake.errors) == 1
    fake.errors.clear()


# --------------------------------------------------------------------------- client mistakes


@pytest.mark.parametrize(
    ("filters", "complaint"),
    [
        ({"user": "u1"}, "unsupported filter key 'user'"),
        ({"and": [{"user_id": "u1"}]}, "upper-case"),
        ({"AND": {"user_id": "u1"}}, "non-empty list"),
        ({"AND": [{"user_id": "u1"}, {"metadata": {"k": {"in": ["a"]}}}]}, "'in'"),
        ({"user_id": {"nin": ["u2"]}}, "no 'nin'"),
        ({"metadata": {"conversation_id": "c1"}}, "at least one of user_id"),
    ],
)
def test_unsupported_filter_shapes_are_400_and_recorded(
    fake: FakeMem0Platform, client: MemoryClient, filters: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValidationError, match="filters") as info:
        client.search("anything", filters=filters)
    assert complaint in info.value.message
    assert fake.requests[-1].status == 400
    assert len(fake.errors) == 1 and complaint in fake.errors[0]
    fake.errors.clear()


def test_missing_entity_and_missing_filters_are_400(
    fake: FakeMem0Platform, client: MemoryClient
) -> None:
    with pytest.raises(ValidationError, match="user_id"):
        client.add("no owner", infer=False)
    with pytest.raises(ValidationError, match="filters is required"):
        client.get_all()
    assert fake.memories == []
    assert len(fake.errors) == 2
    fake.errors.clear()


# --------------------------------------------------------------------------- failures


def test_fail_next_surfaces_as_client_exception(
    fake: FakeMem0Platform, client: MemoryClient
) -> None:
    fake.fail_next(500)
    with pytest.raises(Mem0Error) as info:
        client.search("anything", filters=U1)
    assert info.value.error_code == "HTTP_500"
    fake.fail_next(429, times=2)
    for _ in range(2):
        with pytest.raises(RateLimitError):
            client.add("not stored", user_id="u1")
    assert fake.memories == []
    assert client.search("anything", filters=U1)["results"] == []  # queue drained


def test_delay_beyond_client_timeout_raises_timeout(
    fake: FakeMem0Platform, client: MemoryClient, _http: httpx.Client
) -> None:
    _http.timeout = httpx.Timeout(0.1)
    fake.delay = 0.3
    with pytest.raises(NetworkError) as info:
        client.get_all(filters=U1)
    assert info.value.error_code == "NET_TIMEOUT"
