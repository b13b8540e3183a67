"""Tests for tests/fakes/intercom.py, driven through the real ``requests`` library."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from openapi_core import OpenAPI
from werkzeug.datastructures import Headers

from tests.fakes.intercom import FakeIntercom, RecordedRequest, _OpenAPIRequest, load_spec

TOKEN = "secret-token"
ADMIN_ID = "991267459"
T0 = 1_750_000_000


class Clock:
    """A settable clock: the fake's timestamps and rate-limit windows follow it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="session")
def spec() -> OpenAPI:
    return load_spec()  # ~1 s, once per session (cached in the module)


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update({"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.16"})
        yield session


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(spec: OpenAPI, clock: Clock) -> Iterator[FakeIntercom]:
    with FakeIntercom(TOKEN, clock=clock) as server:
        server.add_admin(ADMIN_ID, "Ciaran Lee", "ciaran@example.com")
        server.add_admin("42", "Other Admin")
        yield server


class _Response:
    """openapi-core's response protocol over a requests.Response."""

    def __init__(self, response: requests.Response) -> None:
        self.status_code = response.status_code
        self.content_type = response.headers.get("Content-Type", "").lower()
        self.headers = Headers(list(response.headers.items()))
        self.data = response.content


def assert_matches_spec(spec: OpenAPI, response: requests.Response) -> None:
    """The fake's answer fits the 2.16 description of that operation's response."""
    request = response.request
    assert request.method is not None and request.path_url is not None
    body = request.body.encode() if isinstance(request.body, str) else request.body
    adapter = _OpenAPIRequest(
        request.method,
        request.path_url.split("?")[0],
        [],
        {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        body,
    )
    problems = []
    for error in spec.iter_response_errors(adapter, _Response(response)):
        schema_errors = getattr(error.__cause__, "schema_errors", None) or [error]
        for schema_error in schema_errors:
            path = list(getattr(schema_error, "absolute_path", []))
            # `assigned_to: {$ref: reference, nullable: true}`: in OpenAPI 3.0 a sibling of
            # $ref is ignored, so openapi-core refuses the null that Intercom sends (and that
            # the description's own examples show). Tolerate exactly that.
            if path and path[-1] == "assigned_to" and schema_error.instance is None:
                continue
            problems.append(
                f"{'/'.join(map(str, path))}: {getattr(schema_error, 'message', error)}"
            )
    assert not problems, problems


def search(
    http: requests.Session, fake: FakeIntercom, query: dict[str, Any], **pagination: Any
) -> requests.Response:
    body: dict[str, Any] = {"query": query}
    if pagination:
        body["pagination"] = pagination
    return http.post(f"{fake.base_url}/conversations/search", json=body, timeout=5)


def walk_search(
    http: requests.Session, fake: FakeIntercom, query: dict[str, Any], per_page: int
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        pagination: dict[str, Any] = {"per_page": per_page}
        if cursor:
            pagination["starting_after"] = cursor
        response = search(http, fake, query, **pagination)
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend(page["conversations"])
        cursor = page["pages"].get("next", {}).get("starting_after")
        if cursor is None:
            return found
    raise AssertionError("the page walk did not end")


# --------------------------------------------------------------------------- auth, admins


def test_wrong_or_missing_token_is_401(fake: FakeIntercom) -> None:
    wrong = requests.get(f"{fake.base_url}/me", headers={"Authorization": "Bearer nope"}, timeout=5)
    missing = requests.get(f"{fake.base_url}/me", timeout=5)

    for response in (wrong, missing):
        assert response.status_code == 401
        body = response.json()
        assert body["type"] == "error.list"
        assert body["errors"] == [{"code": "unauthorized", "message": "Access Token Invalid"}]
        assert response.headers["X-RateLimit-Limit"] == "10000"
    assert fake.validation_errors == []


def test_me_admins_and_recorded_headers(
    fake: FakeIntercom, http: requests.Session, spec: OpenAPI
) -> None:
    me = http.get(f"{fake.base_url}/me", timeout=5)
    admins = http.get(f"{fake.base_url}/admins", timeout=5)
    one = http.get(f"{fake.base_url}/admins/42", timeout=5)
    unknown = http.get(f"{fake.base_url}/admins/7", timeout=5)

    assert me.json()["id"] == ADMIN_ID and me.json()["email"] == "ciaran@example.com"
    assert [a["id"] for a in admins.json()["admins"]] == [ADMIN_ID, "42"]
    assert admins.json()["type"] == "admin.list"
    assert one.json()["name"] == "Other Admin"
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["code"] == "admin_not_found"
    for response in (me, admins, one):
        assert_matches_spec(spec, response)

    recorded = fake.calls("GET", "/admins")
    assert [r.path for r in recorded] == ["/admins", "/admins/42", "/admins/7"]
    assert recorded[0].headers["Intercom-Version"] == "2.16"
    assert recorded[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert recorded[0].json is None and recorded[0].status == 200
    assert fake.validation_errors == []


def test_unknown_route_is_404_and_flagged(fake: FakeIntercom, http: requests.Session) -> None:
    response = http.get(f"{fake.base_url}/conversation/1", timeout=5)

    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"
    assert len(fake.validation_errors) == 1


# --------------------------------------------------------------------------- search


def test_search_and_filter_walks_pages_and_gt_includes_equal_seconds(
    fake: FakeIntercom, http: requests.Session, clock: Clock, spec: OpenAPI
) -> None:
    since = T0 + 100
    expected = set()
    for offset, state in [
        (50, "open"),  # too old
        (100, "open"),  # exactly `since`: `>` is greater-or-equal
        (150, "open"),
        (150, "closed"),  # wrong state
        (200, "open"),
        (250, "snoozed"),  # wrong state
        (300, "open"),
        (301, "open"),
    ]:
        clock.now = T0 + offset
        conv_id = fake.create_conversation(f"<p>at {offset}</p>", state=state)
        if offset >= 100 and state == "open":
            expected.add(conv_id)
    query = {
        "operator": "AND",
        "value": [
            {"field": "updated_at", "operator": ">", "value": since},
            {"field": "state", "operator": "=", "value": "open"},
        ],
    }

    first = search(http, fake, query, per_page=2)
    found = walk_search(http, fake, query, per_page=2)

    assert first.status_code == 200
    assert_matches_spec(spec, first)
    page = first.json()
    assert page["type"] == "conversation.list"
    assert page["total_count"] == len(expected) == 5
    assert page["pages"]["page"] == 1 and page["pages"]["per_page"] == 2
    assert page["pages"]["total_pages"] == 3
    assert page["pages"]["next"]["per_page"] == 2
    assert "conversation_parts" not in page["conversations"][0]
    ids = [c["id"] for c in found]
    assert len(ids) == len(set(ids)) == 5
    assert set(ids) == expected
    assert ids != sorted(ids, key=int)  # an order clients must not rely on
    assert len(fake.calls("POST", "/conversations/search")) == 4
    assert fake.validation_errors == []


def test_search_cursor_is_a_stable_snapshot(
    fake: FakeIntercom, http: requests.Session, clock: Clock
) -> None:
    ids = {fake.create_conversation(f"<p>{i}</p>") for i in range(5)}
    query = {"field": "open", "operator": "=", "value": True}
    first = search(http, fake, query, per_page=2).json()
    # Changes after the first page do not reshuffle the rest of the walk.
    fake.create_conversation("<p>late</p>")
    fake.set_state(sorted(ids)[0], "closed")

    seen = [c["id"] for c in first["conversations"]]
    cursor = first["pages"]["next"]["starting_after"]
    while cursor:
        page = search(http, fake, query, per_page=2, starting_after=cursor).json()
        seen += [c["id"] for c in page["conversations"]]
        cursor = page["pages"].get("next", {}).get("starting_after")

    assert sorted(seen) == sorted(ids)
    assert fake.validation_errors == []


def test_search_filters_waiting_since_assignee_and_or(
    fake: FakeIntercom, http: requests.Session, clock: Clock
) -> None:
    waiting = fake.create_conversation("<p>help</p>", created_at=T0)
    answered = fake.create_conversation("<p>help</p>", created_at=T0, admin_assignee_id=42)
    fake.admin_writes(answered, ADMIN_ID, "<p>done</p>", created_at=T0 + 5)

    def ids(query: dict[str, Any]) -> set[str]:
        response = search(http, fake, query)
        assert response.status_code == 200, response.text
        return {c["id"] for c in response.json()["conversations"]}

    assert ids({"field": "waiting_since", "operator": ">", "value": T0}) == {waiting}
    assert ids({"field": "waiting_since", "operator": "<", "value": str(T0)}) == {waiting}
    assert ids({"field": "admin_assignee_id", "operator": "=", "value": 42}) == {answered}
    assert ids({"field": "admin_assignee_id", "operator": "!=", "value": 42}) == {waiting}
    assert ids({"field": "id", "operator": "=", "value": waiting}) == {waiting}
    nested = {
        "operator": "OR",
        "value": [
            {
                "operator": "AND",
                "value": [
                    {"field": "team_assignee_id", "operator": "=", "value": 0},
                    {"field": "admin_assignee_id", "operator": "=", "value": 0},
                ],
            },
            {"operator": "AND", "value": [{"field": "state", "operator": "!=", "value": "open"}]},
        ],
    }
    assert ids(nested) == {waiting}
    assert fake.validation_errors == []


def test_mixed_nesting_is_refused_by_the_spec(fake: FakeIntercom, http: requests.Session) -> None:
    """A group mixing filters and sub-groups fits neither alternative of the description's
    `multiple_filter_search_request.value` oneOf (an array of groups, or an array of
    filters), so the fake refuses it even though Intercom's prose allows nesting. Clients
    can use IN/NIN or groups only instead."""
    mixed = {
        "operator": "AND",
        "value": [
            {"field": "updated_at", "operator": ">", "value": T0},
            {
                "operator": "OR",
                "value": [{"field": "state", "operator": "=", "value": "open"}],
            },
        ],
    }
    flat = {
        "operator": "AND",
        "value": [
            {"field": "updated_at", "operator": ">", "value": T0},
            {"field": "state", "operator": "IN", "value": ["open", "snoozed"]},
        ],
    }

    assert search(http, fake, mixed).status_code == 400
    assert len(fake.validation_errors) == 1
    assert search(http, fake, flat).status_code == 200
    assert len(fake.validation_errors) == 1


@pytest.mark.parametrize(
    "body",
    [
        {
            "query": {"field": "state", "operator": "=", "value": "open"},
            "pagination": {"per_page": 500},
        },
        {"pagination": {"per_page": 5}},
        {"query": {"field": "state", "operator": "LIKE", "value": "open"}},
        {"query": {"field": "nonsense", "operator": "=", "value": "x"}},
        {
            "query": {"field": "state", "operator": "=", "value": "open"},
            "pagination": {"starting_after": "bogus"},
        },
    ],
    ids=["per_page_500", "missing_query", "operator_not_in_spec", "unknown_field", "bad_cursor"],
)
def test_bad_search_body_is_400_and_recorded(
    fake: FakeIntercom, http: requests.Session, body: dict[str, Any]
) -> None:
    response = http.post(f"{fake.base_url}/conversations/search", json=body, timeout=5)

    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error.list" and error["request_id"]
    assert error["errors"][0]["code"] == "parameter_invalid"
    assert len(fake.validation_errors) == 1
    assert error["errors"][0]["message"] in fake.validation_errors[0]


# --------------------------------------------------------------------------- replies


def test_admin_reply_appends_comment_and_clears_waiting_since(
    fake: FakeIntercom, http: requests.Session, clock: Clock, spec: OpenAPI
) -> None:
    conv_id = fake.create_conversation("<p>Where is my order?</p>", created_at=T0)
    assert fake.conversation(conv_id)["waiting_since"] == T0
    clock.now = T0 + 60
    seen: list[RecordedRequest] = []
    fake.on_applied = seen.append

    response = http.post(
        f"{fake.base_url}/conversations/{conv_id}/reply",
        json={
            "message_type": "comment",
            "type": "admin",
            "admin_id": ADMIN_ID,
            "body": "<p>Hi</p>",
        },
        timeout=5,
    )

    assert response.status_code == 200, response.text
    assert_matches_spec(spec, response)
    conversation = response.json()
    assert conversation["waiting_since"] is None
    assert conversation["updated_at"] == T0 + 60
    last = conversation["conversation_parts"]["conversation_parts"][-1]
    assert last["part_type"] == "comment" and last["body"] == "<p>Hi</p>"
    assert last["author"] == {
        "type": "admin",
        "id": ADMIN_ID,
        "name": "Ciaran Lee",
        "email": "ciaran@example.com",
    }
    assert last["created_at"] == T0 + 60
    assert fake.parts(conv_id, author_id=ADMIN_ID, part_type="comment") == [last]
    assert [r.path for r in seen] == [f"/conversations/{conv_id}/reply"]
    assert fake.validation_errors == []


def test_waiting_since_follows_customer_and_ignores_notes(
    fake: FakeIntercom, http: requests.Session, clock: Clock
) -> None:
    conv_id = fake.create_conversation("<p>Hello</p>", created_at=T0)
    fake.admin_writes(conv_id, ADMIN_ID, "<p>Hi!</p>", created_at=T0 + 10)
    assert fake.conversation(conv_id)["waiting_since"] is None

    fake.customer_writes(conv_id, "<p>Still broken</p>", created_at=T0 + 20)
    fake.customer_writes(conv_id, "<p>Hello??</p>", created_at=T0 + 30)
    assert fake.conversation(conv_id)["waiting_since"] == T0 + 20

    clock.now = T0 + 40
    note = http.post(
        f"{fake.base_url}/conversations/{conv_id}/reply",
        json={
            "message_type": "note",
            "type": "admin",
            "admin_id": ADMIN_ID,
            "body": "<p>internal</p>",
        },
        timeout=5,
    )
    assert note.status_code == 200
    assert note.json()["waiting_since"] == T0 + 20
    assert note.json()["conversation_parts"]["conversation_parts"][-1]["part_type"] == "note"
    assert note.json()["updated_at"] == T0 + 40

    # A contact reply through the API counts as a customer comment too.
    fake.admin_writes(conv_id, ADMIN_ID, "<p>Fixed</p>", created_at=T0 + 50)
    clock.now = T0 + 60
    contact = http.post(
        f"{fake.base_url}/conversations/{conv_id}/reply",
        json={
            "message_type": "comment",
            "type": "user",
            "intercom_user_id": fake.conversation(conv_id)["contacts"]["contacts"][0]["id"],
            "body": "<p>thanks</p>",
        },
        timeout=5,
    )
    assert contact.status_code == 200, contact.text
    assert contact.json()["waiting_since"] == T0 + 60
    assert contact.json()["read"] is False
    assert fake.validation_errors == []


def test_customer_message_reopens_a_closed_conversation(fake: FakeIntercom) -> None:
    conv_id = fake.create_conversation("<p>Hello</p>", state="closed")
    assert fake.conversation(conv_id)["open"] is False

    fake.customer_writes(conv_id, "<p>One more thing</p>")

    assert fake.conversation(conv_id)["state"] == "open"
    assert fake.conversation(conv_id)["open"] is True


def test_invalid_reply_bodies_are_rejected_by_the_spec(
    fake: FakeIntercom, http: requests.Session
) -> None:
    conv_id = fake.create_conversation("<p>Hello</p>")
    url = f"{fake.base_url}/conversations/{conv_id}/reply"

    bad = http.post(url, json={"message_type": "comment", "admin_id": 123}, timeout=5)

    assert bad.status_code == 400
    assert bad.json()["errors"][0]["code"] == "parameter_invalid"
    assert len(fake.validation_errors) == 1
    assert "admin_id: 123 is not of type 'string'" in fake.validation_errors[0]
    assert fake.parts(conv_id) == []

    unknown_admin = http.post(
        url,
        json={"message_type": "comment", "type": "admin", "admin_id": "999", "body": "<p>x</p>"},
        timeout=5,
    )
    missing = http.post(
        f"{fake.base_url}/conversations/77777/reply",
        json={"message_type": "comment", "type": "admin", "admin_id": ADMIN_ID, "body": "<p>x</p>"},
        timeout=5,
    )
    assert unknown_admin.status_code == 404
    assert unknown_admin.json()["errors"][0]["code"] == "admin_not_found"
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["code"] == "not_found"
    assert len(fake.validation_errors) == 1  # state errors are not client bugs
    assert fake.parts(conv_id) == []


def test_validate_false_skips_the_spec_but_not_the_semantics(clock: Clock) -> None:
    with FakeIntercom(TOKEN, validate=False, clock=clock) as fake:
        conv_id = fake.create_conversation("<p>Hello</p>")
        response = requests.post(
            f"{fake.base_url}/conversations/{conv_id}/reply",
            json={"message_type": "comment", "type": "admin", "admin_id": 1, "body": "<p>x</p>"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        # The spec would refuse the integer admin_id; with no admin added, "1" is /me.
        assert response.status_code == 200
        assert fake.validation_errors == []


# --------------------------------------------------------------------------- parts, PUT


def test_assign_snooze_open_and_close_via_parts(
    fake: FakeIntercom, http: requests.Session, clock: Clock, spec: OpenAPI
) -> None:
    conv_id = fake.create_conversation("<p>Hello</p>", created_at=T0)
    url = f"{fake.base_url}/conversations/{conv_id}/parts"

    clock.now = T0 + 10
    assigned = http.post(
        url,
        json={
            "message_type": "assignment",
            "type": "admin",
            "admin_id": ADMIN_ID,
            "assignee_id": "42",
            "body": "Passing this on",
        },
        timeout=5,
    )
    team = http.post(
        url,
        json={
            "message_type": "assignment",
            "type": "team",
            "admin_id": ADMIN_ID,
            "assignee_id": "5017691",
        },
        timeout=5,
    )
    snoozed = http.post(
        url,
        json={"message_type": "snoozed", "admin_id": ADMIN_ID, "snoozed_until": T0 + 3600},
        timeout=5,
    )
    opened = http.post(url, json={"message_type": "open", "admin_id": ADMIN_ID}, timeout=5)
    clock.now = T0 + 20
    closed = http.post(
        url, json={"message_type": "close", "type": "admin", "admin_id": ADMIN_ID}, timeout=5
    )

    for response in (assigned, team, snoozed, opened, closed):
        assert response.status_code == 200, response.text
        assert_matches_spec(spec, response)
    assert assigned.json()["admin_assignee_id"] == 42
    assert team.json()["team_assignee_id"] == 5017691
    assert snoozed.json()["state"] == "snoozed" and snoozed.json()["open"] is True
    assert snoozed.json()["snoozed_until"] == T0 + 3600
    assert opened.json()["state"] == "open" and opened.json()["snoozed_until"] is None
    final = closed.json()
    assert final["state"] == "closed" and final["open"] is False
    assert final["updated_at"] == T0 + 20
    assert final["waiting_since"] == T0  # assignments and state changes leave it alone
    parts = final["conversation_parts"]["conversation_parts"]
    assert [p["part_type"] for p in parts] == [
        "assignment",
        "assignment",
        "snoozed",
        "open",
        "close",
    ]
    assert parts[0]["body"] == "Passing this on"
    assert parts[0]["assigned_to"] == {"type": "admin", "id": "42"}
    assert fake.validation_errors == []


def test_put_marks_read(
    fake: FakeIntercom, http: requests.Session, clock: Clock, spec: OpenAPI
) -> None:
    conv_id = fake.create_conversation("<p>Hello</p>", created_at=T0)
    assert fake.conversation(conv_id)["read"] is False
    clock.now = T0 + 5

    response = http.put(f"{fake.base_url}/conversations/{conv_id}", json={"read": True}, timeout=5)

    assert response.status_code == 200
    assert_matches_spec(spec, response)
    assert response.json()["read"] is True
    assert fake.conversation(conv_id)["read"] is True
    assert fake.conversation(conv_id)["updated_at"] == T0 + 5
    assert fake.validation_errors == []


def test_get_shows_at_most_the_500_newest_parts(
    fake: FakeIntercom, http: requests.Session, spec: OpenAPI
) -> None:
    conv_id = fake.create_conversation("<p>Hello</p>", created_at=T0)
    part_ids = [
        fake.add_part(conv_id, f"<p>{i}</p>", author_type="user", author_id="c1", created_at=T0 + i)
        for i in range(510)
    ]

    response = http.get(f"{fake.base_url}/conversations/{conv_id}", timeout=5)

    assert response.status_code == 200
    assert_matches_spec(spec, response)
    listed = response.json()["conversation_parts"]
    assert [p["id"] for p in listed["conversation_parts"]] == part_ids[10:]
    assert listed["total_count"] == 510
    assert [int(i) for i in part_ids] == sorted(int(i) for i in part_ids)
    assert len(fake.conversation(conv_id)["conversation_parts"]["conversation_parts"]) == 510
    unknown = http.get(f"{fake.base_url}/conversations/4242", timeout=5)
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "not_found"
    assert fake.validation_errors == []


def test_concurrent_replies_are_all_applied(fake: FakeIntercom) -> None:
    conv_id = fake.create_conversation("<p>Hello</p>")
    url = f"{fake.base_url}/conversations/{conv_id}/reply"
    statuses: list[int] = []

    def reply(n: int) -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {TOKEN}"
            for i in range(5):
                body = {
                    "message_type": "note",
                    "type": "admin",
                    "admin_id": ADMIN_ID,
                    "body": f"<p>{n}-{i}</p>",
                }
                statuses.append(session.post(url, json=body, timeout=5).status_code)

    threads = [threading.Thread(target=reply, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * 30
    part_ids = [int(p["id"]) for p in fake.parts(conv_id)]
    assert len(part_ids) == len(set(part_ids)) == 30
    assert part_ids == sorted(part_ids)
    assert fake.validation_errors == []


# --------------------------------------------------------------------------- faults


def test_fail_next_answers_without_applying(fake: FakeIntercom, http: requests.Session) -> None:
    conv_id = fake.create_conversation("<p>Hello</p>")
    url = f"{fake.base_url}/conversations/{conv_id}/reply"
    reply = {"message_type": "comment", "type": "admin", "admin_id": ADMIN_ID, "body": "<p>Hi</p>"}
    fake.fail_next("POST", r"/reply$", 503, times=2, headers={"Retry-After": "1"})
    fake.fail_next("GET", r"^/me$", 502, body="<html>Bad Gateway</html>")

    first = http.post(url, json=reply, timeout=5)
    second = http.post(url, json=reply, timeout=5)
    gateway = http.get(f"{fake.base_url}/me", timeout=5)
    third = http.post(url, json=reply, timeout=5)

    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.json()["errors"][0]["code"] == "service_unavailable"
    assert first.headers["Retry-After"] == "1"
    assert "X-RateLimit-Remaining" in first.headers
    assert gateway.status_code == 502 and gateway.text == "<html>Bad Gateway</html>"
    assert len(fake.parts(conv_id)) == 1
    assert len(fake.calls("POST", f"/conversations/{conv_id}")) == 3
    assert fake.validation_errors == []


def test_apply_then_fail_changes_state_but_answers_500(
    fake: FakeIntercom, http: requests.Session
) -> None:
    conv_id = fake.create_conversation("<p>Hello</p>")
    applied = threading.Event()
    fake.on_applied = lambda request: applied.set()
    fake.apply_then_fail("POST", r"/conversations/\d+/reply", 500)

    response = http.post(
        f"{fake.base_url}/conversations/{conv_id}/reply",
        json={
            "message_type": "comment",
            "type": "admin",
            "admin_id": ADMIN_ID,
            "body": "<p>Hi</p>",
        },
        timeout=5,
    )

    assert response.status_code == 500
    assert response.json()["errors"][0]["code"] == "server_error"
    assert applied.is_set()
    assert [p["body"] for p in fake.parts(conv_id)] == ["<p>Hi</p>"]
    assert fake.calls("POST")[-1].status == 500
    assert fake.validation_errors == []


def test_apply_then_hang_times_out_the_client_after_applying(
    fake: FakeIntercom, http: requests.Session
) -> None:
    conv_id = fake.create_conversation("<p>Hello</p>")
    fake.apply_then_hang("POST", "/parts", 2.0)

    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.post(
            f"{fake.base_url}/conversations/{conv_id}/parts",
            json={"message_type": "close", "type": "admin", "admin_id": ADMIN_ID},
            timeout=(2, 0.2),
        )
    assert time.monotonic() - started < 1.5
    assert fake.conversation(conv_id)["state"] == "closed"
    # The rule is used up: the next call answers at once.
    again = http.post(
        f"{fake.base_url}/conversations/{conv_id}/parts",
        json={"message_type": "open", "admin_id": ADMIN_ID},
        timeout=(2, 1),
    )
    assert again.status_code == 200
    assert fake.validation_errors == []


def test_rate_limit_next_and_the_fixed_window(
    fake: FakeIntercom, http: requests.Session, clock: Clock
) -> None:
    clock.now = T0 + 0.25
    fake.rate_limit_next(reset_in=1.5, times=2)

    limited = [http.get(f"{fake.base_url}/admins", timeout=5) for _ in range(2)]
    ok = http.get(f"{fake.base_url}/admins", timeout=5)

    for response in limited:
        assert response.status_code == 429
        assert response.json()["errors"][0]["code"] == "rate_limit_exceeded"
        assert response.headers["X-RateLimit-Remaining"] == "0"
        assert response.headers["X-RateLimit-Reset"] == str(math.ceil(T0 + 0.25 + 1.5))
    assert ok.status_code == 200
    assert ok.headers["X-RateLimit-Limit"] == "10000"
    assert ok.headers["X-RateLimit-Remaining"] == str(10000 - 3)


def test_fixed_window_counter(spec: OpenAPI, clock: Clock) -> None:
    with FakeIntercom(TOKEN, clock=clock, rate_limit=3, rate_window=10) as fake:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        url = f"{fake.base_url}/me"
        answers = [requests.get(url, headers=headers, timeout=5) for _ in range(4)]
        clock.now += 10  # next window
        after = requests.get(url, headers=headers, timeout=5)

    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    assert answers[0].headers["X-RateLimit-Reset"] == str(T0 + 10)
    assert after.status_code == 200 and after.headers["X-RateLimit-Remaining"] == "2"
    assert after.headers["X-RateLimit-Reset"] == str(T0 + 20)


def test_stop_is_quick_and_closes_idle_keepalive_connections(clock: Clock) -> None:
    fake = FakeIntercom(TOKEN, clock=clock).start()
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {TOKEN}"
        assert session.get(f"{fake.base_url}/me", timeout=5).status_code == 200
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 1
        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(f"{fake.base_url}/me", timeout=1)
