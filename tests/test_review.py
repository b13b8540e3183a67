"""Slack review end to end: the real daemon, Bolt over Socket Mode, a fake Slack."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from intercom_responder.bootstrap import App
from intercom_responder.core.records import ConversationRecord, State
from tests import slack_review
from tests.conftest import ADMIN_ID, TEAMMATE_ID, eventually, notes, replies, waiting_customer
from tests.fakes.intercom import FakeIntercom
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack import FakeSlack
from tests.slack_review import (
    CHANNEL,
    DRAFT,
    OUTSIDER,
    REVIEWER,
    last_update,
    posted_review,
    slack_settings,
)

MakeApp = Callable[..., App]
slack = slack_review.slack


@pytest.fixture
def reviewing(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, slack: FakeSlack
) -> Iterator[Callable[..., App]]:
    """A started daemon with Slack review, whose model is unsure; closed before Slack stops."""
    model.set_json_reply(DRAFT, 0.55, "similar to a verified answer, not the same")
    started: list[App] = []

    def start(**overrides: str) -> App:
        app = make_app(**slack_settings(slack, **overrides))
        app.start()
        started.append(app)
        assert slack.wait_connected(10)
        return app

    yield start
    for app in started:
        app.close()


def test_a_draft_below_the_threshold_becomes_one_escaped_slack_message(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack
) -> None:
    app = reviewing()
    cid, ts = posted_review(app, intercom)

    [message] = slack.messages
    rendered = json.dumps(message.blocks)
    assert message.channel == CHANNEL and message.ts == ts
    assert [
        e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]
    ] == ["approve", "edit", "reject"]
    assert "0.55" in rendered and "similar to a verified answer" in rendered
    assert "below the threshold" in rendered and "Customer" in rendered
    assert "&lt;!channel&gt;" in rendered and f"conversation/{cid}" in rendered
    assert notes(intercom, cid) == [] and replies(intercom, cid) == []


def test_approve_sends_the_draft_updates_slack_and_teaches_the_memory(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack
) -> None:
    app = reviewing()
    cid, ts = posted_review(app, intercom)

    envelope = slack.send_block_action(REVIEWER, "approve", message_ts=ts)

    ack = slack.wait_ack(envelope, timeout=3)
    assert ack is not None and slack.ack_latency(envelope) < 3
    [reply] = eventually(lambda: replies(intercom, cid))
    assert "Billing &gt; E-mail" in reply["body"]
    outcome = eventually(lambda: "Approved" in last_update(slack, ts) and last_update(slack, ts))
    assert f"<@{REVIEWER}>" in outcome and '"actions"' not in outcome
    record = app.store.get(cid)
    assert record is not None and record.state == State.AWAITING_USER_REPLY
    assert app.recall is not None
    entries = eventually(lambda: app.recall.entries())  # type: ignore[union-attr]
    assert [(e.answer, e.source, e.conversation_id) for e in entries] == [(DRAFT, "approved", cid)]


def test_edit_opens_a_prefilled_modal_in_time_and_sends_the_edited_text(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack
) -> None:
    app = reviewing()
    cid, ts = posted_review(app, intercom)

    click = slack.send_block_action(REVIEWER, "edit", message_ts=ts)
    [view] = eventually(lambda: slack.views_opened)
    assert slack.wait_ack(click, timeout=3) is not None
    element = view.view["blocks"][0]["element"]
    assert element["initial_value"] == DRAFT

    empty = slack.send_view_submission(
        REVIEWER, callback_id="review_edit", values={"answer": {"answer_input": "   "}}
    )
    refused = slack.wait_ack(empty, timeout=3)
    assert refused is not None
    assert refused["payload"]["response_action"] == "errors"
    assert replies(intercom, cid) == []

    submit = slack.send_view_submission(
        REVIEWER,
        callback_id="review_edit",
        values={"answer": {"answer_input": "Settings > Billing > E-mail, then Save."}},
    )
    assert slack.wait_ack(submit, timeout=3) is not None
    [reply] = eventually(lambda: replies(intercom, cid))
    assert "then Save." in reply["body"]
    outcome = eventually(lambda: "Edited" in last_update(slack, ts) and last_update(slack, ts))
    assert "then Save." in outcome
    assert app.recall is not None
    entries = eventually(lambda: app.recall.entries())  # type: ignore[union-attr]
    assert [(e.answer, e.source) for e in entries] == [
        ("Settings > Billing > E-mail, then Save.", "edited")
    ]


def test_a_stop_lets_an_approval_under_way_finish_before_it_closes(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack, tmp_path: Path
) -> None:
    from intercom_responder.adapters.store import StateStore

    app = reviewing()
    cid, ts = posted_review(app, intercom)
    intercom.apply_then_hang("POST", r"/reply$", 1.5)  # the approved reply is slow to confirm
    envelope = slack.send_block_action(REVIEWER, "approve", message_ts=ts)
    assert slack.wait_ack(envelope, timeout=3) is not None
    eventually(lambda: intercom.calls("POST", f"/conversations/{cid}/reply"))

    app.close()  # SIGTERM while the reply is on its way

    assert len(replies(intercom, cid)) == 1
    record = StateStore(tmp_path / "sessions.json", read_only=True).get(cid)
    assert record is not None and record.state == State.AWAITING_USER_REPLY  # recorded, tidy
    assert "Approved" in last_update(slack, ts)


def test_reject_sends_nothing_and_hands_off_with_an_assignment(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack
) -> None:
    app = reviewing(HANDOFF_TEAM_ID="4242")
    cid, ts = posted_review(app, intercom)

    slack.send_block_action(REVIEWER, "reject", message_ts=ts)

    [note] = eventually(lambda: notes(intercom, cid))
    assert "rejected in Slack" in note["body"]
    assert replies(intercom, cid) == []
    eventually(lambda: intercom.conversation(cid)["team_assignee_id"] == 4242)
    assert "Rejected" in eventually(
        lambda: "Rejected" in last_update(slack, ts) and last_update(slack, ts)
    )
    record = app.store.get(cid)
    assert record is not None and record.state == State.HANDED_OFF


def test_a_customer_who_wrote_again_makes_the_review_stale_and_gets_a_new_draft(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack
) -> None:
    app = reviewing()
    cid, ts = posted_review(app, intercom)
    intercom.customer_writes(
        cid, "<p>Also: can I add a second e-mail?</p>", created_at=int(time.time()) - 5
    )

    slack.send_block_action(REVIEWER, "approve", message_ts=ts)

    eventually(lambda: "Stale" in last_update(slack, ts))
    assert "customer wrote again" in last_update(slack, ts)
    assert replies(intercom, cid) == []
    [ephemeral] = eventually(lambda: slack.ephemerals)
    assert ephemeral.user == REVIEWER and "Nothing was sent" in ephemeral.text
    record = app.store.get(cid)
    assert record is not None and record.state == State.WAITING
    app.poller.poll_once()  # the newer message goes through the pipeline again
    assert len(slack.messages) == 2
    record = app.store.get(cid)
    assert record is not None and record.state == State.IN_REVIEW


def test_a_teammate_who_answered_makes_the_review_stale(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack
) -> None:
    app = reviewing()
    cid, ts = posted_review(app, intercom)
    intercom.admin_writes(cid, TEAMMATE_ID, "<p>Done for you!</p>")

    slack.send_block_action(REVIEWER, "approve", message_ts=ts)

    eventually(lambda: "teammate answered" in last_update(slack, ts))
    assert replies(intercom, cid) == []


def test_an_undecided_review_expires_and_is_handed_off(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack
) -> None:
    app = reviewing()
    cid, ts = posted_review(app, intercom)
    record = app.store.get(cid)
    assert record is not None and record.review is not None
    app.store.put(
        ConversationRecord(**{**record.__dict__, "review": replace(record.review, expires_at=0)})
    )

    app.poller.poll_once()

    assert "Expired" in last_update(slack, ts)
    [note] = notes(intercom, cid)
    assert "REVIEW_TIMEOUT_MINUTES" in note["body"]
    assert replies(intercom, cid) == []
    slack.send_block_action(REVIEWER, "approve", message_ts=ts)  # too late now
    [ephemeral] = eventually(lambda: slack.ephemerals)
    assert "already decided" in ephemeral.text
    assert replies(intercom, cid) == []


def test_outsiders_are_acknowledged_and_told_privately_on_click_and_on_submit(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack
) -> None:
    app = reviewing(SLACK_APPROVER_IDS=f"{REVIEWER}, U0OTHER")
    cid, ts = posted_review(app, intercom)

    for action in ("approve", "reject", "edit"):
        envelope = slack.send_block_action(OUTSIDER, action, message_ts=ts)
        assert slack.wait_ack(envelope, timeout=3) is not None
    eventually(lambda: len(slack.ephemerals) == 3)
    assert all(e.user == OUTSIDER and "not allowed" in e.text for e in slack.ephemerals)
    assert slack.views_opened == []
    submit = slack.send_view_submission(
        OUTSIDER,
        callback_id="review_edit",
        private_metadata=f"{cid}|{ts}",
        values={"answer": {"answer_input": "sneaky"}},
    )
    assert slack.wait_ack(submit, timeout=3) is not None
    eventually(lambda: len(slack.ephemerals) == 4)
    assert replies(intercom, cid) == [] and notes(intercom, cid) == []
    record = app.store.get(cid)
    assert record is not None and record.state == State.IN_REVIEW


def test_a_double_click_or_two_reviewers_at_once_send_once(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack
) -> None:
    app = reviewing()
    cid, ts = posted_review(app, intercom)

    first = slack.send_block_action(REVIEWER, "approve", message_ts=ts)
    slack.send_block_action("U0SECOND", "approve", message_ts=ts)
    slack.replay(first)

    eventually(lambda: replies(intercom, cid))
    eventually(lambda: len(slack.ephemerals) >= 2)
    time.sleep(0.5)
    assert len(replies(intercom, cid)) == 1
    assert all("already decided" in e.text for e in slack.ephemerals)


def test_a_click_right_after_a_reconnect_is_acknowledged_in_time(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack
) -> None:
    app = reviewing()
    cid, ts = posted_review(app, intercom)

    slack.disconnect("refresh_requested")
    assert slack.wait_connected(5, min_opened=2)
    envelope = slack.send_block_action(REVIEWER, "approve", message_ts=ts)

    ack = slack.wait_ack(envelope, timeout=3)
    assert ack is not None
    eventually(lambda: replies(intercom, cid))
    eventually(lambda: "Approved" in last_update(slack, ts))


def test_the_socket_comes_back_after_a_network_loss(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack
) -> None:
    app = reviewing()
    cid, ts = posted_review(app, intercom)

    slack.drop_connections()
    assert slack.wait_connected(8, min_opened=2)
    envelope = slack.send_block_action(REVIEWER, "approve", message_ts=ts)
    assert slack.wait_ack(envelope, timeout=3) is not None
    eventually(lambda: replies(intercom, cid))
    eventually(lambda: "Approved" in last_update(slack, ts))


def test_a_click_after_a_daemon_restart_still_works(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack
) -> None:
    first = reviewing()
    cid, ts = posted_review(first, intercom)
    started = time.monotonic()
    first.close()
    assert time.monotonic() - started < 3  # the socket closes quickly on shutdown

    second = reviewing()
    assert slack.connections_opened >= 2
    slack.send_block_action(REVIEWER, "approve", message_ts=ts)

    eventually(lambda: replies(intercom, cid))
    eventually(lambda: getattr(second.store.get(cid), "state", None) == State.AWAITING_USER_REPLY)
    assert len(replies(intercom, cid)) == 1
    assert second.recall is not None
    eventually(lambda: second.recall.entries())  # type: ignore[union-attr]


def test_slack_down_at_start_falls_back_to_internal_notes(
    intercom: FakeIntercom,
    model: FakeOpenAI,
    make_app: MakeApp,
    slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    model.set_json_reply(DRAFT, 0.55, "unsure")
    app = make_app(**slack_settings(slack, SLACK_BOT_TOKEN="xoxb-wrong-token-0123"))
    app.start()
    cid = waiting_customer(intercom)

    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "noted"
    assert len(notes(intercom, cid)) == 1 and slack.messages == []
    unavailable = [r for r in caplog.records if "Slack review unavailable" in r.getMessage()]
    assert len(unavailable) == 1 and "invalid_auth" in unavailable[0].getMessage()
    assert "xoxb-wrong-token-0123" not in caplog.text


def test_confident_replies_do_not_go_through_slack(
    reviewing: Callable[..., App], intercom: FakeIntercom, model: FakeOpenAI, slack: FakeSlack
) -> None:
    app = reviewing()
    model.set_json_reply("Sure, done.", 0.95, "documented")
    cid = waiting_customer(intercom)
    app.poller.poll_once()
    assert len(replies(intercom, cid)) == 1 and slack.messages == []


def test_a_crash_between_sending_an_approved_reply_and_recording_it_sends_once(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack
) -> None:
    app = reviewing()
    cid, ts = posted_review(app, intercom)
    record = app.store.get(cid)
    assert record is not None
    # the approved reply reached Intercom, then the process died before recording it
    app.store.put(ConversationRecord(**{**record.__dict__, "state": "SENDING", "action": "reply"}))
    intercom.admin_writes(cid, ADMIN_ID, "<p>the approved reply</p>")

    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "recovered"
    assert len(replies(intercom, cid)) == 1
    assert "Sent" in last_update(slack, ts) and '"actions"' not in last_update(slack, ts)
    slack.send_block_action(REVIEWER, "approve", message_ts=ts)  # a late click changes nothing
    eventually(lambda: slack.ephemerals)
    assert len(replies(intercom, cid)) == 1


def test_a_rejected_and_an_expired_review_are_routed_to_the_team_the_model_picks(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack, model: FakeOpenAI
) -> None:
    intercom.add_team("4001", "Billing")
    intercom.add_team("4242", "Support")

    def answer(request: dict[str, Any]) -> str:
        schema = (request.get("response_format") or {}).get("json_schema") or {}
        if schema.get("name") == "route_conversation":
            return json.dumps({"team": "Billing", "confidence": 0.9, "reason": "billing e-mail"})
        return json.dumps({"answer": DRAFT, "confidence": 0.55, "reasoning": "unsure"})

    model.reply = answer
    app = reviewing(ROUTING="true", HANDOFF_TEAM_ID="4242")
    rejected, ts = posted_review(app, intercom)
    expired, _ = posted_review(app, intercom, text="<p>Where is my invoice?</p>")
    record = app.store.get(expired)
    assert record is not None and record.review is not None
    app.store.put(
        ConversationRecord(**{**record.__dict__, "review": replace(record.review, expires_at=0)})
    )

    slack.send_block_action(REVIEWER, "reject", message_ts=ts)
    app.poller.poll_once()  # the expiry

    for cid in (rejected, expired):
        eventually(lambda cid=cid: intercom.conversation(cid)["team_assignee_id"] == 4001)
        routing = eventually(
            lambda cid=cid: [n["body"] for n in notes(intercom, cid) if "Routing:" in n["body"]]
        )
        assert len(routing) == 1 and "Routed to <b>Billing</b>" in routing[0]


def test_a_review_posted_at_night_expires_after_open_hours_only(
    reviewing: Callable[..., App], intercom: FakeIntercom, slack: FakeSlack
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    def berlin(text: str) -> float:
        when = datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo("Europe/Berlin"))
        return when.timestamp()

    now = [berlin("2026-11-24 23:00")]  # a Tuesday night
    app = reviewing(
        hours_clock=lambda: now[0],
        BUSINESS_HOURS="mon-fri 09:00-17:00",
        TIMEZONE="Europe/Berlin",
        REVIEW_TIMEOUT_MINUTES="120",
    )
    cid, ts = posted_review(app, intercom)
    record = app.store.get(cid)
    assert record is not None and record.review is not None
    assert record.review.expires_at == berlin("2026-11-25 11:00")  # two open hours later
    [away] = replies(intercom, cid)  # the customer hears when the team is back
    assert "back tomorrow 09:00" in away["body"]

    now[0] = berlin("2026-11-25 01:00")  # two hours later, but nobody was there
    app.poller.poll_once()
    record = app.store.get(cid)
    assert record is not None and record.state == State.IN_REVIEW

    now[0] = berlin("2026-11-25 11:00")
    app.poller.poll_once()
    assert "Expired" in last_update(slack, ts)
    assert len(replies(intercom, cid)) == 1  # no second away message in the same period


def test_a_click_and_a_poll_take_turns_on_one_set_of_locks(
    reviewing: Callable[..., App],
) -> None:
    """An empty lock set is falsy (it has a length): `locks or ConversationLocks()` once gave
    the pipeline a set of its own, so a Slack click and a poll did not take turns."""
    app = reviewing()
    assert app.desk is not None
    assert app.pipeline._locks is app.desk._locks
