"""Slack review with two replicas on one PostgreSQL state store (issue 18): the pending
reviews live in the database, so a click that reaches any replica acts once.

Two real daemons (`STATE_BACKEND=postgres`, one fresh database per test, see
`tests/postgres.py`), each with its own Socket Mode connection to one fake Slack, and one
Mem0 platform they share. Slack spreads an app's events over its open connections: the
clicks here are sent on a chosen one (`via`, 0 = the replica started first). What a
user would check: one reply in Intercom, the Slack message updated once, the record in
the shared store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from intercom_responder.bootstrap import App
from intercom_responder.core.records import ConversationRecord, State
from tests import slack_review
from tests.conftest import eventually, notes, replies
from tests.fakes.intercom import FakeIntercom
from tests.fakes.mem0_platform import FakeMem0Platform
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack import FakeSlack
from tests.slack_review import (
    DRAFT,
    REVIEWER,
    last_update,
    posted_review,
    slack_settings,
)

pytestmark = pytest.mark.openai_only  # nothing here depends on the responder

MakeApp = Callable[..., App]
Replicas = Callable[..., tuple[App, App]]
MEM0_KEY = "m0-replicas-secret-0123456789"
SECOND_REVIEWER = "U0SECOND"
A, B = 0, 1  # `via`: the connections in the order the replicas opened them
SETTLE = 0.4  # seconds to wait for a second reply or update that must not come
slack = slack_review.slack


@pytest.fixture
def platform() -> Iterator[FakeMem0Platform]:
    with FakeMem0Platform(api_key=MEM0_KEY) as fake:
        yield fake
        assert fake.errors == []


@pytest.fixture
def replicas(
    model: FakeOpenAI,
    make_app: MakeApp,
    slack: FakeSlack,
    platform: FakeMem0Platform,
    pg_url: str,
) -> Iterator[Replicas]:
    """Start replica A, then replica B, on one database, one Slack app and one Mem0
    platform; both hold a Socket Mode connection (A's is `via=0`). Closed before Slack stops.
    """
    model.set_json_reply(DRAFT, 0.55, "similar to a verified answer, not the same")
    started: list[App] = []

    def start(**overrides: str) -> tuple[App, App]:
        for n in (1, 2):
            app = make_app(
                STATE_BACKEND="postgres",
                DATABASE_URL=pg_url,
                MEM0_API_KEY=MEM0_KEY,
                MEM0_HOST=platform.base_url,
                **slack_settings(slack, **overrides),
            )
            app.start()
            started.append(app)
            assert slack.wait_connected(10, min_opened=n)
            assert len(slack.open_connections) == n  # so `via=n-1` is this replica
        first, second = started[-2:]
        return first, second

    yield start
    for app in started:
        app.close()


def decided(app: App, outcome: str) -> float:
    """How many reviews this replica decided as `outcome` ("approved", "expired", ...)."""
    assert app.metrics is not None
    value = app.metrics.registry.get_sample_value(
        "intercom_responder_review_outcomes_total", {"outcome": outcome}
    )
    return value or 0.0


def state_in(app: App, cid: str) -> State | None:
    record = app.store.get(cid)
    return record.state if record is not None else None


def acked(slack: FakeSlack, envelope: str) -> tuple[float, int]:
    """(seconds to the ack, serial of the connection it came on); fails without one."""
    assert slack.wait_ack(envelope, timeout=3) is not None, "no ack within Slack's 3 s"
    ack = next(a for a in slack.acks if a.envelope_id == envelope)
    return ack.latency, ack.connection


def updates(slack: FakeSlack, ts: str) -> list[dict[str, Any]]:
    message = slack.message(ts)
    assert message is not None
    return message.updates


def reply_posts(intercom: FakeIntercom, cid: str) -> int:
    """Requests to the reply endpoint (replies and notes alike), failed ones included."""
    return len(intercom.calls("POST", f"/conversations/{cid}/reply"))


def test_a_review_posted_by_one_replica_is_approved_through_the_other(
    replicas: Replicas, intercom: FakeIntercom, slack: FakeSlack, platform: FakeMem0Platform
) -> None:
    a, b = replicas()
    cid, ts = posted_review(a, intercom)  # A's poll drafted and posted it
    assert state_in(b, cid) is State.IN_REVIEW  # B sees the pending review in the database

    envelope = slack.send_block_action(REVIEWER, "approve", message_ts=ts, via=B)

    latency, connection = acked(slack, envelope)
    assert latency < 3 and connection == slack.open_connections[B]
    [reply] = eventually(lambda: replies(intercom, cid))
    assert "Billing &gt; E-mail" in reply["body"]
    outcome = eventually(lambda: "Approved" in last_update(slack, ts) and last_update(slack, ts))
    assert f"<@{REVIEWER}>" in outcome and '"actions"' not in outcome
    assert (decided(a, "approved"), decided(b, "approved")) == (0, 1)  # B carried it out
    assert state_in(a, cid) is state_in(b, cid) is State.AWAITING_USER_REPLY
    # the approved answer taught the memory both replicas draft with, once
    assert a.recall is not None and b.recall is not None
    [entry] = eventually(lambda: a.recall.entries())  # type: ignore[union-attr]
    assert (entry.answer, entry.source, entry.conversation_id) == (DRAFT, "approved", cid)
    assert b.recall.entries() == [entry]

    a.poller.poll_once()  # the next polls of both replicas send nothing more
    b.poller.poll_once()
    time.sleep(SETTLE)
    assert len(replies(intercom, cid)) == 1 and reply_posts(intercom, cid) == 1
    assert len(updates(slack, ts)) == 1 and len(platform.memories) == 1
    assert slack.ephemerals == []


def test_two_reviewers_at_once_on_different_replicas_and_a_replay_send_once(
    replicas: Replicas, intercom: FakeIntercom, slack: FakeSlack
) -> None:
    a, b = replicas()
    cid, ts = posted_review(a, intercom)

    first = slack.send_block_action(REVIEWER, "approve", message_ts=ts, via=A)
    second = slack.send_block_action(SECOND_REVIEWER, "approve", message_ts=ts, via=B)
    slack.replay(first, via=B)  # Slack retried the first click, on the other connection

    for envelope, nth in ((first, 1), (second, 1), (first, 2)):
        assert slack.wait_ack(envelope, timeout=3, nth=nth) is not None
    eventually(lambda: replies(intercom, cid))
    eventually(lambda: len(slack.ephemerals) >= 2)
    time.sleep(SETTLE)
    assert len(replies(intercom, cid)) == 1 and reply_posts(intercom, cid) == 1
    told = slack.ephemerals
    assert len(told) == 2 and all("already decided" in e.text for e in told)
    assert len(updates(slack, ts)) == 1 and "Approved" in last_update(slack, ts)
    assert decided(a, "approved") + decided(b, "approved") == 1
    assert state_in(a, cid) is state_in(b, cid) is State.AWAITING_USER_REPLY


def test_an_edit_opened_on_one_replica_and_submitted_to_the_other_is_sent_once(
    replicas: Replicas, intercom: FakeIntercom, slack: FakeSlack, platform: FakeMem0Platform
) -> None:
    a, b = replicas()
    cid, ts = posted_review(a, intercom)
    edited = "Settings > Billing > E-mail, then Save."

    click = slack.send_block_action(REVIEWER, "edit", message_ts=ts, via=A)
    [view] = eventually(lambda: slack.views_opened)
    assert acked(slack, click)[1] == slack.open_connections[A]  # A opened the modal
    assert view.user_id == REVIEWER
    assert view.view["blocks"][0]["element"]["initial_value"] == DRAFT
    submit = slack.send_view_submission(
        REVIEWER, callback_id="review_edit", values={"answer": {"answer_input": edited}}, via=B
    )

    assert acked(slack, submit)[1] == slack.open_connections[B]
    [reply] = eventually(lambda: replies(intercom, cid))
    assert "then Save." in reply["body"] and "Billing &gt; E-mail." not in reply["body"]
    outcome = eventually(lambda: "Edited" in last_update(slack, ts) and last_update(slack, ts))
    assert "then Save." in outcome
    assert (decided(a, "edited"), decided(b, "edited")) == (0, 1)
    assert state_in(a, cid) is state_in(b, cid) is State.AWAITING_USER_REPLY
    assert a.recall is not None
    [entry] = eventually(lambda: a.recall.entries())  # type: ignore[union-attr]
    assert (entry.answer, entry.source) == (edited, "edited")

    slack.replay(submit, via=A)  # a retried submission, on the replica that opened the modal
    assert slack.wait_ack(submit, timeout=3, nth=2) is not None
    eventually(lambda: slack.ephemerals)
    time.sleep(SETTLE)
    assert len(replies(intercom, cid)) == 1 and reply_posts(intercom, cid) == 1
    assert len(updates(slack, ts)) == 1 and len(platform.memories) == 1
    [told] = slack.ephemerals
    assert told.user == REVIEWER and "already decided" in told.text


def test_a_click_while_the_other_replica_holds_the_conversation_is_acked_and_acts_after(
    replicas: Replicas, intercom: FakeIntercom, slack: FakeSlack
) -> None:
    a, b = replicas()
    cid, ts = posted_review(a, intercom)
    # A takes the conversation up again (a webhook, a sweep) and Intercom is slow to
    # answer it: A holds the conversation's claim for ~2 s
    read, slow = f"/conversations/{cid}", 2.0
    intercom.apply_then_hang("GET", f"^{read}$", slow)
    reads_before = len(intercom.calls("GET", read))
    outcomes = []
    busy = threading.Thread(target=lambda: outcomes.append(a.pipeline.handle(cid)))
    busy.start()
    eventually(lambda: len(intercom.calls("GET", read)) > reads_before)  # A has the claim
    a_read = intercom.calls("GET", read)[reads_before]

    envelope = slack.send_block_action(REVIEWER, "approve", message_ts=ts, via=B)

    latency, _ = acked(slack, envelope)
    assert latency < 1.0  # acknowledged at once, not after the wait for the claim
    assert busy.is_alive() and replies(intercom, cid) == []  # B waits for A
    busy.join(10)
    [outcome] = outcomes
    assert outcome.reason == "waiting for the review in Slack"  # A changed nothing
    [reply] = eventually(lambda: replies(intercom, cid))
    [post] = intercom.calls("POST", f"/conversations/{cid}/reply")
    assert post.at >= a_read.at + slow  # B acted only once A had let the conversation go
    assert "Billing &gt; E-mail" in reply["body"]
    eventually(lambda: "Approved" in last_update(slack, ts))
    time.sleep(SETTLE)
    assert len(replies(intercom, cid)) == 1 and len(updates(slack, ts)) == 1
    assert slack.ephemerals == []  # the reviewer was not told to try again
    assert (decided(a, "approved"), decided(b, "approved")) == (0, 1)
    assert state_in(a, cid) is state_in(b, cid) is State.AWAITING_USER_REPLY


def test_a_claim_held_longer_than_the_click_waits_tells_the_reviewer_to_try_again(
    replicas: Replicas, intercom: FakeIntercom, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("intercom_responder.flow.review_desk.CLAIM_WAIT_SECONDS", 0.6)  # 15 s
    a, b = replicas()
    cid, ts = posted_review(a, intercom)
    assert a.claims is not None and a.claims.claim(cid)  # A is busy with it, for long

    envelope = slack.send_block_action(REVIEWER, "approve", message_ts=ts, via=B)

    assert acked(slack, envelope)[0] < 1.0
    [told] = eventually(lambda: slack.ephemerals)
    assert told.user == REVIEWER and "Another replica is working on this" in told.text
    assert replies(intercom, cid) == [] and updates(slack, ts) == []
    assert state_in(b, cid) is State.IN_REVIEW  # still pending: nothing was decided

    a.claims.release(cid)
    again = slack.send_block_action(REVIEWER, "approve", message_ts=ts, via=B)
    assert acked(slack, again)[0] < 1.0
    eventually(lambda: replies(intercom, cid))
    eventually(lambda: "Approved" in last_update(slack, ts))
    time.sleep(SETTLE)
    assert len(replies(intercom, cid)) == 1 and len(updates(slack, ts)) == 1
    assert len(slack.ephemerals) == 1
    assert state_in(a, cid) is State.AWAITING_USER_REPLY


def test_an_expired_review_is_handed_off_once_when_both_replicas_run_the_expiry(
    replicas: Replicas, intercom: FakeIntercom, slack: FakeSlack
) -> None:
    a, b = replicas(HANDOFF_TEAM_ID="4242")
    cid, ts = posted_review(a, intercom)
    record = a.store.get(cid)
    assert record is not None and record.review is not None
    a.store.put(
        ConversationRecord(**{**record.__dict__, "review": replace(record.review, expires_at=0)})
    )
    # Intercom is slow to answer, so both expiry runs are on the conversation at once
    intercom.apply_then_hang("GET", f"^/conversations/{cid}$", 0.5)
    both = threading.Barrier(2)
    expired: list[int] = []

    def expire(app: App) -> None:
        assert app.desk is not None
        both.wait(5)
        expired.append(app.desk.expire_due())

    runs = [threading.Thread(target=expire, args=(app,)) for app in (a, b)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(15)

    assert sorted(expired) == [0, 1]
    [note] = notes(intercom, cid)
    assert "REVIEW_TIMEOUT_MINUTES" in note["body"]
    assert replies(intercom, cid) == []
    eventually(lambda: intercom.conversation(cid)["team_assignee_id"] == 4242)
    assert len(updates(slack, ts)) == 1 and "Expired" in last_update(slack, ts)
    assert decided(a, "expired") + decided(b, "expired") == 1
    assert state_in(a, cid) is state_in(b, cid) is State.HANDED_OFF
    a.poller.poll_once()  # the leader's next expiry run finds nothing left to do
    b.poller.poll_once()
    assert len(notes(intercom, cid)) == 1 and len(updates(slack, ts)) == 1

    late = slack.send_block_action(REVIEWER, "approve", message_ts=ts, via=B)  # too late now
    assert slack.wait_ack(late, timeout=3) is not None
    [told] = eventually(lambda: slack.ephemerals)
    assert "already decided" in told.text
    assert replies(intercom, cid) == [] and len(notes(intercom, cid)) == 1
