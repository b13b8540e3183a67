"""The Intercom client through real `requests` against the fake Intercom."""

from __future__ import annotations

import socket
import time

import pytest

from intercom_responder.adapters.intercom import (
    AmbiguousWriteError,
    IntercomClient,
    IntercomError,
    RateLimiter,
)
from tests.conftest import ADMIN_ID, TOKEN
from tests.fakes.intercom import FakeIntercom


def client_for(intercom: FakeIntercom, **kwargs: object) -> IntercomClient:
    return IntercomClient(token=TOKEN, base_url=intercom.base_url, **kwargs)  # type: ignore[arg-type]


def test_every_call_carries_auth_version_and_a_user_agent(intercom: FakeIntercom) -> None:
    client = client_for(intercom, version="2.16")
    assert client.me()["type"] == "admin"
    [request] = intercom.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Intercom-Version"] == "2.16"
    assert request.headers["User-Agent"].startswith("intercom-responder/")


def test_errors_carry_intercoms_code_message_method_and_path(intercom: FakeIntercom) -> None:
    client = IntercomClient(token="wrong", base_url=intercom.base_url)
    with pytest.raises(IntercomError) as caught:
        client.get_conversation("123")
    message = str(caught.value)
    assert "GET /conversations/123" in message
    assert "HTTP 401" in message and "unauthorized: Access Token Invalid" in message
    assert caught.value.codes == ["unauthorized"]
    assert len(intercom.requests) == 1  # a 4xx is not retried
    assert "wrong" not in message


def test_a_missing_conversation_is_a_404_error(intercom: FakeIntercom) -> None:
    with pytest.raises(IntercomError) as caught:
        client_for(intercom).get_conversation("999999")
    assert caught.value.status == 404 and caught.value.codes == ["not_found"]


def test_5xx_on_a_read_is_retried_with_backoff(intercom: FakeIntercom) -> None:
    cid = intercom.create_conversation("<p>hi</p>")
    intercom.fail_next("GET", r"^/conversations/", 503, times=2)
    sleeps: list[float] = []
    client = client_for(intercom, sleep=sleeps.append)
    assert client.get_conversation(cid)["id"] == cid
    assert len(sleeps) == 2 and all(0 < s <= 30.1 for s in sleeps)
    assert len(intercom.calls("GET")) == 3


def test_retries_end_with_the_last_error(intercom: FakeIntercom) -> None:
    intercom.fail_next("GET", r"^/me$", 500, times=20)
    client = client_for(intercom, sleep=lambda s: None, max_attempts=3)
    with pytest.raises(IntercomError) as caught:
        client.me()
    assert caught.value.status == 500
    assert len(intercom.calls("GET", "/me")) == 3


def test_429_waits_until_x_ratelimit_reset(intercom: FakeIntercom) -> None:
    sleeps: list[float] = []
    client = client_for(intercom, sleep=sleeps.append)
    intercom.rate_limit_next(reset_in=3)
    client.me()
    assert len(sleeps) == 1 and 1.5 <= sleeps[0] <= 4.5
    assert client.rate_limiter.waits == 1


def test_a_write_answered_with_429_is_retried_because_it_was_not_applied(
    intercom: FakeIntercom,
) -> None:
    cid = intercom.create_conversation("<p>hi</p>")
    client = client_for(intercom, sleep=lambda s: None)
    intercom.rate_limit_next(reset_in=1)
    client.reply(cid, admin_id=ADMIN_ID, body_html="<p>Hello</p>", message_type="comment")
    assert len(intercom.parts(cid, author_id=ADMIN_ID)) == 1


def test_a_write_that_times_out_is_ambiguous_and_never_retried_blind(
    intercom: FakeIntercom,
) -> None:
    cid = intercom.create_conversation("<p>hi</p>")
    intercom.apply_then_hang("POST", r"/reply$", 3.0)
    client = client_for(intercom, timeout=0.5)
    with pytest.raises(AmbiguousWriteError) as caught:
        client.reply(cid, admin_id=ADMIN_ID, body_html="<p>Hello</p>", message_type="comment")
    assert f"POST /conversations/{cid}/reply" in str(caught.value)
    assert len(intercom.calls("POST", f"/conversations/{cid}/reply")) == 1
    assert len(intercom.parts(cid, author_id=ADMIN_ID)) == 1


def test_a_write_answered_with_5xx_is_ambiguous(intercom: FakeIntercom) -> None:
    cid = intercom.create_conversation("<p>hi</p>")
    intercom.apply_then_fail("POST", r"/reply$", 500)
    with pytest.raises(AmbiguousWriteError):
        client_for(intercom).reply(
            cid, admin_id=ADMIN_ID, body_html="<p>x</p>", message_type="note"
        )
    assert len(intercom.calls("POST")) == 1


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_retried_even_for_writes_because_nothing_was_sent() -> None:
    sleeps: list[float] = []
    client = IntercomClient(
        token=TOKEN,
        base_url=f"http://127.0.0.1:{_closed_port()}",
        sleep=sleeps.append,
        max_attempts=3,
    )
    with pytest.raises(IntercomError) as caught:
        client.reply("1", admin_id=ADMIN_ID, body_html="<p>x</p>", message_type="comment")
    assert not isinstance(caught.value, AmbiguousWriteError)
    assert len(sleeps) == 2  # three attempts
    assert "ConnectionError" in str(caught.value)


def test_search_follows_pages_and_sends_a_valid_query(intercom: FakeIntercom) -> None:
    now = int(time.time())
    ids = {intercom.create_conversation(f"<p>{i}</p>", created_at=now - 100) for i in range(7)}
    query = {
        "operator": "AND",
        "value": [
            {"field": "updated_at", "operator": ">", "value": now - 200},
            {"field": "state", "operator": "=", "value": "open"},
        ],
    }
    found = [c["id"] for c in client_for(intercom).search_conversations(query, per_page=3)]
    assert sorted(found) == sorted(ids)
    assert len(intercom.calls("POST", "/conversations/search")) == 3


def test_throttles_before_the_limit_instead_of_hitting_429() -> None:
    now = [1000.0]
    sleeps: list[float] = []
    limiter = RateLimiter(clock=lambda: now[0], sleep=sleeps.append)

    class Response:
        def __init__(self, remaining: int) -> None:
            self.headers = {
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": "1004",
            }

    limiter.after_response(Response(50))  # type: ignore[arg-type]
    limiter.before_request()
    assert sleeps == []
    limiter.after_response(Response(5))  # type: ignore[arg-type]
    limiter.before_request()
    assert sleeps == [4.0]  # waits for the window to reset
