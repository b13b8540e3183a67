"""Business hours against the fakes: outside BUSINESS_HOURS a hand-off or a review still
goes to the team, and the customer hears once per closed period when the team is back.

The clock the hours are judged by is injected (`hours_clock`), so a Friday evening is a
test, not a wait.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from intercom_responder.bootstrap import App
from intercom_responder.config import ConfigError, load_settings
from intercom_responder.core.conversation import NOTE_MARKER
from intercom_responder.core.records import ConversationRecord, PostKind, State
from tests.conftest import ADMIN_ID, TEAMMATE_ID, waiting_customer
from tests.fakes.intercom import FakeIntercom
from tests.fakes.openai_server import FakeOpenAI

MakeApp = Callable[..., App]
BERLIN = ZoneInfo("Europe/Berlin")
HOURS = {"BUSINESS_HOURS": "mon-fri 09:00-17:30", "TIMEZONE": "Europe/Berlin"}


def at(text: str) -> float:
    """A local Berlin time, 'YYYY-MM-DD HH:MM', as Unix seconds."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=BERLIN).timestamp()


FRIDAY_EVENING = at("2026-11-27 18:00")
SATURDAY_NOON = at("2026-11-28 12:00")
MONDAY_MORNING = at("2026-11-30 10:00")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def comments(intercom: FakeIntercom, cid: str) -> list[str]:
    return [p["body"] for p in intercom.parts(cid, author_id=ADMIN_ID, part_type="comment")]


def notes(intercom: FakeIntercom, cid: str) -> list[str]:
    return [p["body"] for p in intercom.parts(cid, author_id=ADMIN_ID, part_type="note")]


def test_a_friday_evening_hand_off_gets_one_away_message_naming_monday(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    clock = Clock(FRIDAY_EVENING)
    cid = waiting_customer(intercom, "<p>This is urgent, my shop is down</p>")
    app = make_app(hours_clock=clock, HANDOFF_TEAM_ID="4242", **HOURS)

    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "handed off"
    assert len(notes(intercom, cid)) == 1  # the team is told as always
    assert intercom.conversation(cid)["team_assignee_id"] == 4242
    [away] = comments(intercom, cid)
    assert "away right now and back Monday 09:00" in away
    record = app.store.get(cid)
    assert record is not None and record.state is State.HANDED_OFF
    assert app.metrics is not None
    assert app.metrics.value("intercom_responder_away_messages_total") == 1

    clock.now = SATURDAY_NOON  # the same closed period: the customer writes again
    intercom.customer_writes(cid, "<p>Hello?? urgent!</p>")
    app.poller.poll_once()
    app.close()
    make_app(hours_clock=clock, **HOURS).poller.poll_once()  # nor after a restart
    assert len(comments(intercom, cid)) == 1


def test_the_away_message_answers_nothing_and_a_new_closed_period_gets_its_own(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    model.set_json_reply("Maybe like this.", 0.4, "unsure")  # every draft goes to review
    clock = Clock(FRIDAY_EVENING)
    cid = waiting_customer(intercom, "<p>How do I export my data?</p>")
    app = make_app(hours_clock=clock, **HOURS)
    app.poller.poll_once()
    assert len(comments(intercom, cid)) == 1 and len(notes(intercom, cid)) == 1

    clock.now = SATURDAY_NOON  # after the away message the customer still waits for the team
    intercom.customer_writes(cid, "<p>Also my invoices?</p>")
    [outcome] = app.poller.poll_once().outcomes
    assert outcome.status == "skipped" and "waiting for a teammate" in outcome.reason
    assert len(model.chat_requests) == 1  # no second draft over the team's head

    clock.now = MONDAY_MORNING  # a teammate answers; later the customer writes again
    intercom.admin_writes(cid, TEAMMATE_ID, "<p>Here is how: ...</p>")
    app.poller.poll_once()
    clock.now = at("2026-11-30 19:00")  # Monday evening: a closed period of its own
    intercom.customer_writes(cid, "<p>Thanks! One more: can I export as CSV?</p>")
    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "noted"
    assert len(comments(intercom, cid)) == 2
    assert "back tomorrow 09:00" in comments(intercom, cid)[-1]


def test_a_restart_between_the_note_and_the_away_message_sends_it_once(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom, "<p>urgent: refund me</p>")
    customer_part = str(intercom.conversation(cid)["source"]["id"])
    intercom.admin_writes(
        cid, ADMIN_ID, f"<p>{NOTE_MARKER} Handed to the team</p>", part_type="note"
    )
    app = make_app(hours_clock=Clock(SATURDAY_NOON), **HOURS)
    app.store.put(  # died after the note, before the away message
        ConversationRecord(
            cid, State.SENDING, customer_part_id=customer_part, action=PostKind.HANDOFF
        )
    )

    [outcome] = app.poller.poll_once().outcomes
    app.poller.poll_once()

    assert outcome.status == "recovered"
    assert len(comments(intercom, cid)) == 1 and len(notes(intercom, cid)) == 1


def test_outside_the_hours_the_away_threshold_decides_what_is_sent_alone(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    model.set_json_reply("Settings > Export.", 0.85, "documented")
    clock = Clock(FRIDAY_EVENING)
    away = {**HOURS, "CONFIDENCE_THRESHOLD": "0.8", "CONFIDENCE_THRESHOLD_AWAY": "0.9"}
    evening = waiting_customer(intercom, "<p>How do I export my data?</p>")
    app = make_app(hours_clock=clock, **away)

    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "noted"  # 0.85 < 0.9 while closed
    assert "below the threshold 0.90" in outcome.reason
    assert len(comments(intercom, evening)) == 1  # only the away message

    clock.now = MONDAY_MORNING
    morning = waiting_customer(intercom, "<p>How do I export my invoices?</p>")
    [outcome] = [o for o in app.poller.poll_once().outcomes if o.conversation_id == morning]
    assert outcome.status == "replied"  # 0.85 >= 0.8 while open
    assert comments(intercom, morning) == ["<p>Settings &gt; Export.</p>"]


def test_always_open_without_business_hours(
    intercom: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    cid = waiting_customer(intercom, "<p>urgent please</p>")
    app = make_app(hours_clock=Clock(SATURDAY_NOON))
    app.poller.poll_once()
    assert comments(intercom, cid) == [] and len(notes(intercom, cid)) == 1


@pytest.mark.parametrize(
    ("env", "variable", "words"),
    [
        ({"BUSINESS_HOURS": "mon-fry 09:00-17:00"}, "BUSINESS_HOURS", "fry"),
        ({"BUSINESS_HOURS": "mon-fri 9-17"}, "BUSINESS_HOURS", "9-17"),
        ({"BUSINESS_HOURS": "mon 09:00-17:00", "TIMEZONE": "Mars/Olympus"}, "TIMEZONE", "Mars"),
        ({"CONFIDENCE_THRESHOLD_AWAY": "2"}, "CONFIDENCE_THRESHOLD_AWAY", "2"),
    ],
)
def test_malformed_hours_or_an_unknown_timezone_name_the_variable(
    tmp_path: Path, env: dict[str, str], variable: str, words: str
) -> None:
    base = {"INTERCOM_ACCESS_TOKEN": "t" * 10, "INTERCOM_ADMIN_ID": "1", "OPENAI_API_KEY": "k"}
    with pytest.raises(ConfigError) as caught:
        load_settings({**base, **env})
    assert caught.value.variable == variable and words in str(caught.value)
    settings = load_settings({**base, **HOURS})
    assert settings.business_hours is not None
    assert settings.business_hours.is_open(at("2026-11-30 09:00"))
    assert not settings.business_hours.is_open(FRIDAY_EVENING)
