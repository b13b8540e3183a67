"""A poll cycle end to end: the real daemon, real clients, fake Intercom and model."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from intercom_responder.adapters.responder import DraftRequest
from intercom_responder.bootstrap import App
from intercom_responder.core.conversation import NOTE_MARKER
from intercom_responder.core.draft import Draft
from intercom_responder.core.markup import text_to_html
from intercom_responder.core.records import ConversationRecord, PostKind, State
from tests.conftest import ADMIN_ID, TEAMMATE_ID, waiting_customer
from tests.fakes.intercom import FakeIntercom
from tests.fakes.openai_server import FakeOpenAI

MakeApp = Callable[..., App]
REPLY = r"^/conversations/\d+/reply$"


def our_comments(intercom: FakeIntercom, cid: str) -> list[dict[str, Any]]:
    return intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")


def our_notes(intercom: FakeIntercom, cid: str) -> list[dict[str, Any]]:
    return intercom.parts(cid, author_id=ADMIN_ID, part_type="note")


def test_a_confident_draft_is_sent_once_and_marked_read(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom)
    app = make_app()

    result = app.poller.poll_once()

    assert result.ok, result.error
    [reply] = our_comments(intercom, cid)
    assert reply["body"] == text_to_html("You can reset it under Settings > Security.")
    assert intercom.conversation(cid)["read"] is True
    record = app.store.get(cid)
    assert record is not None and record.state == State.AWAITING_USER_REPLY
    assert record.reply_part_id == str(reply["id"])
    # the same message is never answered twice, and an idle poll costs one call
    calls_before = len(intercom.requests)
    again = app.poller.poll_once()
    assert again.ok and our_comments(intercom, cid) == [reply]
    assert len(intercom.requests) - calls_before == 1
    assert len(model.chat_requests) == 1
    assert all(r.headers.get("Intercom-Version") == "2.16" for r in intercom.requests)


def test_a_draft_below_the_threshold_becomes_an_internal_note(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    model.set_json_reply("Perhaps try turning it off and on?", 0.42, "not in the docs")
    cid = waiting_customer(intercom)
    app = make_app()

    app.poller.poll_once()

    assert our_comments(intercom, cid) == []
    [note] = our_notes(intercom, cid)
    assert NOTE_MARKER in note["body"]
    assert "0.42" in note["body"] and "not in the docs" in note["body"]
    assert "Perhaps try turning it off and on?" in note["body"]
    record = app.store.get(cid)
    assert record is not None and record.state == State.HANDED_OFF
    # left to the team: the customer writing again does not bring the AI back
    intercom.customer_writes(cid, "<p>hello??</p>", created_at=int(time.time() - 30))
    app.poller.poll_once()
    assert our_comments(intercom, cid) == [] and len(our_notes(intercom, cid)) == 1
    assert len(model.chat_requests) == 1
    # until a teammate has answered: then the next customer message is ours again
    intercom.admin_writes(cid, TEAMMATE_ID, "<p>Let me check.</p>")
    intercom.customer_writes(cid, "<p>Thanks! Another question</p>", created_at=int(time.time()))
    app.poller.poll_once()
    assert len(model.chat_requests) == 2


def test_a_burst_of_messages_gets_one_answer_covering_all(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    now = int(time.time())
    cid = intercom.create_conversation("<p>Hi there</p>", created_at=now - 50)
    intercom.customer_writes(cid, "<p>my invoice is wrong</p>", created_at=now - 45)
    intercom.customer_writes(cid, "<p>it says 3 seats, we have 2</p>", created_at=now - 40)

    make_app().poller.poll_once()

    assert len(our_comments(intercom, cid)) == 1
    [request] = model.chat_requests
    prompt = request["messages"][-1]["content"]
    for text in ("Hi there", "my invoice is wrong", "it says 3 seats, we have 2"):
        assert text in prompt


def test_a_young_message_waits_for_the_debounce_and_is_then_answered_without_new_activity(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = intercom.create_conversation("<p>Quick question</p>", created_at=int(time.time()))
    app = make_app(DEBOUNCE_SECONDS="2")

    first = app.poller.poll_once()
    assert first.outcomes == []  # parked from the search result, without reading it
    assert intercom.calls("GET") == []
    assert our_comments(intercom, cid) == [] and model.chat_requests == []
    record = app.store.get(cid)
    assert record is not None and record.state == State.WAITING

    time.sleep(2.2)
    second = app.poller.poll_once()
    assert [o.status for o in second.outcomes] == ["replied"]
    assert len(our_comments(intercom, cid)) == 1


def test_skip_rules_leave_conversations_alone(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    now = int(time.time())
    closed = waiting_customer(intercom)
    intercom.set_state(closed, "closed")
    snoozed = waiting_customer(intercom)
    intercom.set_state(snoozed, "snoozed")
    assigned = intercom.create_conversation(
        "<p>hi</p>", created_at=now - 60, admin_assignee_id=int(TEAMMATE_ID)
    )
    answered = waiting_customer(intercom)
    intercom.admin_writes(answered, TEAMMATE_ID, "<p>Done!</p>")
    only_notes = waiting_customer(intercom)
    intercom.admin_writes(answered, TEAMMATE_ID, "<p>Done!</p>")
    intercom.admin_writes(only_notes, TEAMMATE_ID, "<p>looking</p>", part_type="note")
    old = intercom.create_conversation("<p>old</p>", created_at=now - 30 * 3600)
    intercom.customer_writes(old, "<p>still old</p>", created_at=now - 25 * 3600)
    intercom.add_part(
        old, None, author_type="admin", author_id=TEAMMATE_ID, part_type="assignment"
    )  # touched today, message still 25 h old

    app = make_app()
    result = app.poller.poll_once()

    assert result.ok
    for cid in (closed, snoozed, assigned, answered, old):
        assert our_comments(intercom, cid) == [] and our_notes(intercom, cid) == [], cid
    # a note is not an answer: the customer with only a teammate's note is answered
    assert len(our_comments(intercom, only_notes)) == 1
    assert len(model.chat_requests) == 1
    # the assigned conversation is answered when the rule is switched off
    relaxed = make_app(
        SKIP_ASSIGNED_TO_OTHERS="false",
        STATE_FILE=str(Path(app.store.path).with_name("other.json")),
    )
    relaxed.poller.poll_once()
    assert len(our_comments(intercom, assigned)) == 1


@pytest.mark.openai_only  # its twin for GPT Trainer is in test_gpt_trainer.py
def test_a_teammate_who_answers_during_drafting_wins(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom)

    def teammate_is_faster(request: dict[str, Any]) -> str:
        intercom.admin_writes(cid, TEAMMATE_ID, "<p>I've got this one.</p>")
        return json.dumps({"answer": "AI answer", "confidence": 0.99, "reasoning": ""})

    model.reply = teammate_is_faster
    app = make_app()
    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "dropped"
    assert our_comments(intercom, cid) == []
    assert [p["author"]["id"] for p in intercom.parts(cid, part_type="comment")] == [TEAMMATE_ID]


@pytest.mark.openai_only  # its twin for GPT Trainer is in test_gpt_trainer.py
def test_a_customer_who_writes_during_drafting_gets_one_answer_to_everything(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom, "<p>Where is my order?</p>")

    def customer_adds_more(request: dict[str, Any]) -> str:
        if len(model.chat_requests) == 1:
            intercom.customer_writes(
                cid, "<p>Order 12345, by the way</p>", created_at=int(time.time()) - 1
            )
        return json.dumps({"answer": "It ships today.", "confidence": 0.95, "reasoning": ""})

    model.reply = customer_adds_more
    make_app().poller.poll_once()

    assert len(our_comments(intercom, cid)) == 1
    assert len(model.chat_requests) == 2
    assert "Order 12345" in model.chat_requests[1]["messages"][-1]["content"]


def test_a_reply_that_times_out_after_intercom_applied_it_is_not_sent_again(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom)
    intercom.apply_then_hang("POST", REPLY, 4.0)
    app = make_app(INTERCOM_TIMEOUT="1")

    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "replied"
    assert len(our_comments(intercom, cid)) == 1
    record = app.store.get(cid)
    assert record is not None and record.state == State.AWAITING_USER_REPLY


def test_a_reply_answered_with_5xx_after_it_was_applied_is_not_sent_again(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom)
    intercom.apply_then_fail("POST", REPLY, 502)

    make_app().poller.poll_once()

    assert len(our_comments(intercom, cid)) == 1


def test_a_reply_refused_with_5xx_before_it_was_applied_is_sent_after_checking(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom)
    intercom.fail_next("POST", REPLY, 503)

    [outcome] = make_app().poller.poll_once().outcomes

    assert outcome.status == "replied"
    assert len(our_comments(intercom, cid)) == 1
    posts = intercom.calls("POST", f"/conversations/{cid}/reply")
    assert len(posts) == 2


def test_server_errors_on_reads_are_retried(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom)
    intercom.fail_next("GET", rf"^/conversations/{cid}$", 500, times=2)
    intercom.fail_next("POST", r"^/conversations/search$", 503)

    result = make_app().poller.poll_once()

    assert result.ok
    assert len(our_comments(intercom, cid)) == 1


def test_429_waits_until_the_rate_limit_resets(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom)
    app = make_app()
    intercom.rate_limit_next(reset_in=1.5)
    started = time.monotonic()

    result = app.poller.poll_once()

    assert result.ok
    assert time.monotonic() - started >= 0.5  # waited for X-RateLimit-Reset
    assert len(our_comments(intercom, cid)) == 1
    assert app.intercom.rate_limiter.waits >= 1


def test_a_model_reply_that_is_not_json_goes_to_a_human(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    model.reply = "Sure! You can reset it in the settings."
    cid = waiting_customer(intercom)

    [outcome] = make_app().poller.poll_once().outcomes

    assert outcome.status == "noted"
    assert our_comments(intercom, cid) == []
    [note] = our_notes(intercom, cid)
    assert "not valid JSON" in note["body"]
    assert "Sure! You can reset it in the settings." in note["body"]


def test_html_in_a_draft_arrives_as_visible_text(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    model.set_json_reply('<img src=x onerror=alert(1)> and <script>alert("x")</script>\nbye', 0.95)
    cid = waiting_customer(intercom)

    make_app().poller.poll_once()

    [reply] = our_comments(intercom, cid)
    assert "<img" not in reply["body"] and "<script" not in reply["body"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in reply["body"]
    assert "&lt;script&gt;" in reply["body"] and "<br>" in reply["body"]


def test_one_failing_conversation_does_not_stop_the_others(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    broken = waiting_customer(intercom)
    fine = waiting_customer(intercom)
    intercom.fail_next("GET", rf"^/conversations/{broken}$", 400, times=10)
    app = make_app(CONCURRENCY="1")

    result = app.poller.poll_once()

    assert not result.ok  # the cycle reports the failure (exit code 1 with --once)
    assert len(our_comments(intercom, fine)) == 1
    record = app.store.get(broken)
    assert record is not None and record.state == State.WAITING and record.attempts == 1
    assert record.last_error is not None and f"/conversations/{broken}" in record.last_error
    assert record.due_at is not None and record.due_at > time.time()


@pytest.mark.openai_only  # its twin for GPT Trainer is in test_gpt_trainer.py
def test_a_message_that_keeps_failing_is_given_up_with_a_note(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom)
    model.fail_next(500, times=100)
    app = make_app(MAX_ATTEMPTS="2")

    app.poller.poll_once()
    record = app.store.get(cid)
    assert record is not None and record.state == State.WAITING
    app.store.put(ConversationRecord(**{**record.__dict__, "due_at": 0.0}))  # due now
    app.poller.poll_once()

    record = app.store.get(cid)
    assert record is not None and record.state == State.FAILED and record.attempts == 2
    [note] = our_notes(intercom, cid)
    assert "Could not answer this conversation automatically" in note["body"]
    assert our_comments(intercom, cid) == []


def test_a_vanished_conversation_is_skipped(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom)
    intercom.fail_next("GET", rf"^/conversations/{cid}$", 404)
    [outcome] = make_app().poller.poll_once().outcomes
    assert outcome.status == "skipped" and "no longer exists" in outcome.reason


def crashed_while_sending(intercom: FakeIntercom, make_app: MakeApp) -> tuple[str, App]:
    """A waiting customer, and a state file whose daemon died while posting the reply."""
    cid = waiting_customer(intercom)
    customer_part = str(intercom.conversation(cid)["source"]["id"])
    app = make_app()
    app.store.put(
        ConversationRecord(
            cid, State.SENDING, customer_part_id=customer_part, action=PostKind.REPLY
        )
    )
    return cid, app


def test_after_a_crash_while_sending_our_own_reply_is_found_not_sent_again(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid, app = crashed_while_sending(intercom, make_app)
    # Intercom had taken the reply when the process died
    intercom.admin_writes(cid, ADMIN_ID, "<p>the reply that made it</p>")

    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "recovered"
    assert len(our_comments(intercom, cid)) == 1 and model.chat_requests == []
    record = app.store.get(cid)
    assert record is not None and record.state == State.AWAITING_USER_REPLY


def test_after_a_crash_before_sending_the_message_is_answered(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid, app = crashed_while_sending(intercom, make_app)  # Intercom never got the reply
    app.store.set_cursor(int(time.time()) + 3600)  # the search will not find it: the record must

    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "replied"
    assert len(our_comments(intercom, cid)) == 1


def test_dry_run_prints_and_changes_nothing(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, tmp_path: Path
) -> None:
    confident = waiting_customer(intercom)
    unsure = waiting_customer(intercom, "<p>Can I get a refund?</p>")
    model.reply = lambda request: json.dumps(
        {
            "answer": "Refunds: ask the team."
            if "refund" in request["messages"][-1]["content"]
            else "Reset it in Settings.",
            "confidence": 0.3 if "refund" in request["messages"][-1]["content"] else 0.9,
            "reasoning": "r",
        }
    )
    state_file = tmp_path / "sessions.json"
    state_file.write_text('{"version": 1, "cursor": {"updated_at": null}, "conversations": {}}')
    before = state_file.read_bytes()
    out = io.StringIO()

    result = make_app(dry_run=True, out=out).poller.poll_once()

    assert result.ok
    assert [
        r.method
        for r in intercom.requests
        if r.method != "GET" and r.path != "/conversations/search"
    ] == []
    assert state_file.read_bytes() == before
    printed = out.getvalue()
    assert f"conversation {confident}: would send reply" in printed
    assert f"conversation {unsure}: would send internal note for review" in printed
    assert "confidence: 0.90" in printed and "confidence: 0.30" in printed
    assert "Reset it in Settings." in printed and "Refunds: ask the team." in printed


def test_an_idle_poll_costs_one_call_however_many_conversations_are_open(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    now = int(time.time())
    for _ in range(400):  # open, but waiting on nobody: the team answered last
        cid = intercom.create_conversation("<p>q</p>", created_at=now - 600)
        intercom.admin_writes(cid, TEAMMATE_ID, "<p>a</p>", created_at=now - 500)
    waiting = [waiting_customer(intercom) for _ in range(3)]
    app = make_app()

    first = app.poller.poll_once()
    gets = [r for r in intercom.requests if r.method == "GET"]
    assert {r.path for r in gets} == {f"/conversations/{cid}" for cid in waiting}
    assert first.intercom_calls == 1 + 3 * 4  # one search page: only waiting ones match; read,
    # re-read, reply, mark read for each

    second = app.poller.poll_once()
    assert second.intercom_calls == 1
    assert second.ok


def test_conversations_are_handled_concurrently(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    model.delay = 0.4
    cids = [waiting_customer(intercom) for _ in range(8)]
    app = make_app(CONCURRENCY="4")

    started = time.monotonic()
    app.poller.poll_once()
    elapsed = time.monotonic() - started

    assert all(len(our_comments(intercom, cid)) == 1 for cid in cids)
    assert elapsed < 8 * 0.4 * 0.75, elapsed  # sequential would take 3.2 s


def test_a_poll_never_overlaps_itself(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    model.delay = 0.8
    cid = waiting_customer(intercom)
    app = make_app()
    results = []
    first = threading.Thread(target=lambda: results.append(app.poller.poll_once()))
    first.start()
    time.sleep(0.3)
    second = app.poller.poll_once()  # due while the first is still running
    first.join()

    assert second.error == "previous poll still running"
    assert len(our_comments(intercom, cid)) == 1
    assert len(model.chat_requests) == 1


class SessionResponder:
    """A responder that keeps a session per conversation (as an Assistants-style API would)."""

    def __init__(self) -> None:
        self.seen_sessions: list[str | None] = []

    def draft(self, request: DraftRequest) -> Draft:
        self.seen_sessions.append(request.session_id)
        return Draft(answer="Sure.", confidence=0.95, session_id=f"sess-{request.conversation_id}")


def test_a_responder_session_is_kept_per_conversation_until_it_expires(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom)
    responder = SessionResponder()
    app = make_app(responder=responder, SESSION_TTL_HOURS="1")

    app.poller.poll_once()
    assert app.store.session(cid) == f"sess-{cid}"
    intercom.customer_writes(cid, "<p>one more thing</p>", created_at=int(time.time()) - 5)
    app.poller.poll_once()

    assert responder.seen_sessions == [None, f"sess-{cid}"]
    record = app.store.get(cid)
    assert record is not None and record.session_expires_at is not None
    assert 3500 < record.session_expires_at - time.time() <= 3600


def test_an_unknown_admin_id_is_a_failure_with_intercoms_reason_not_a_vanished_conversation(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom)
    app = make_app(INTERCOM_ADMIN_ID="424242")

    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "failed"
    record = app.store.get(cid)
    assert record is not None and record.state == State.WAITING and record.attempts == 1
    assert record.last_error is not None and "admin_not_found" in record.last_error


def test_a_dry_run_that_finds_a_hand_off_made_before_a_crash_writes_nothing(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    """Recovering a `SENDING` hand-off records it; in a dry run it must not assign anything."""
    cid = waiting_customer(intercom)
    customer_part = str(intercom.conversation(cid)["source"]["id"])
    intercom.admin_writes(
        cid, ADMIN_ID, f"<p>{NOTE_MARKER} Handed to the team</p>", part_type="note"
    )
    app = make_app(dry_run=True, HANDOFF_TEAM_ID="4242")
    app.store.put(
        ConversationRecord(
            cid, State.SENDING, customer_part_id=customer_part, action=PostKind.HANDOFF
        )
    )

    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "recovered"
    writes = [r for r in intercom.requests if r.method != "GET" and "/search" not in r.path]
    assert writes == [] and model.chat_requests == []


def test_a_long_dry_run_shows_each_conversation_once(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom)
    out = io.StringIO()
    app = make_app(dry_run=True, out=out)

    app.poller.poll_once()
    app.poller.poll_once()

    assert out.getvalue().count(f"conversation {cid}:") == 1
    assert len(model.chat_requests) == 1


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every behaviour here holds with both responders, except where marked `openai_only`."""
    if "responder_kind" in metafunc.fixturenames:
        only_openai = metafunc.definition.get_closest_marker("openai_only") is not None
        kinds = ["openai"] if only_openai else ["openai", "gpt-trainer"]
        metafunc.parametrize("responder_kind", kinds)
