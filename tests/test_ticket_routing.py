"""Ticket routing (ROUTE_TICKETS) and the routing of dead letters, against the fakes.

Tickets: the search finds open Customer tickets no team holds, each is classified from
its title and description and assigned with `PUT /tickets/{id}` (2.16: `admin_id` and
`assignee_id` at the top level), once each, across restarts.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from intercom_responder.adapters.store import StateStore
from intercom_responder.bootstrap import App
from intercom_responder.config import ConfigError, load_settings
from intercom_responder.core.records import RouteTaken, State
from intercom_responder.core.ticket_records import TicketRecord, TicketState
from intercom_responder.core.tickets import Ticket
from tests.conftest import ADMIN_ID, TEAMMATE_ID, TOKEN, waiting_customer
from tests.fakes.intercom import FakeIntercom
from tests.fakes.openai_server import FakeAPIError, FakeOpenAI

pytestmark = pytest.mark.openai_only

MakeApp = Callable[..., App]

#: What the fake model answers, by a word of the customer's text.
LABELS = {"charged": "Billing", "refund": "Billing", "password": "Account security"}


@pytest.fixture
def teams(intercom: FakeIntercom) -> FakeIntercom:
    intercom.add_team("4001", "Billing")
    intercom.add_team("4002", "Account security")
    intercom.add_team("4242", "Support")
    return intercom


def labelled_model(model: FakeOpenAI, confidence: float = 0.9) -> None:
    """Routes by a keyword of the text it is given; drafts fail (so a message dead-letters)."""

    def answer(request: dict[str, Any]) -> str:
        schema = (request.get("response_format") or {}).get("json_schema") or {}
        if schema.get("name") != "route_conversation":
            raise FakeAPIError(500, "the drafting model is down")
        text = request["messages"][-1]["content"].lower()
        team = next((t for word, t in LABELS.items() if word in text), "Sales")
        return json.dumps({"team": team, "confidence": confidence, "reason": f"about {team}"})

    model.reply = answer


def routing_calls(model: FakeOpenAI) -> int:
    return sum(
        1
        for r in model.chat_requests
        if ((r.get("response_format") or {}).get("json_schema") or {}).get("name")
        == "route_conversation"
    )


def ticket_puts(intercom: FakeIntercom) -> list[Any]:
    return [r.json for r in intercom.requests if r.method == "PUT" and "/tickets/" in r.path]


def team_of(intercom: FakeIntercom, ticket_id: str) -> int:
    return int(intercom.ticket(ticket_id)["team_assignee_id"])


def test_a_ticket_is_parsed_from_the_216_shapes() -> None:
    ticket = Ticket.from_api(
        {
            "id": "7001",
            "ticket_attributes": {
                "_default_title_": "Charged twice",
                "_default_description_": "<p>My card was <b>charged</b> twice</p>",
            },
            "team_assignee_id": 0,
            "updated_at": 1700000000,
            "open": True,
        }
    )
    assert ticket.team_id is None and ticket.customer_texts() == [
        "Charged twice",
        "My card was charged twice",
    ]
    assert Ticket.from_api({"id": 8, "team_assignee_id": 4001}).team_id == "4001"


def test_new_tickets_go_to_the_team_their_text_is_about_once_each(
    teams: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    labelled_model(model)
    billing = teams.create_ticket("Charged twice", "My card was charged twice this month")
    security = teams.create_ticket("Locked out", "I forgot my password and 2FA phone")
    held = teams.create_ticket("Refund please", "refund my order", team_assignee_id="4242")
    closed = teams.create_ticket("Refund", "refund", state="resolved")
    app = make_app(ROUTE_TICKETS="true")

    app.poller.poll_once()

    assert team_of(teams, billing) == 4001 and team_of(teams, security) == 4002
    assert team_of(teams, held) == 4242 and team_of(teams, closed) == 0  # left alone
    puts = ticket_puts(teams)
    assert sorted(p["assignee_id"] for p in puts) == ["4001", "4002"]
    assert all(set(p) == {"admin_id", "assignee_id"} for p in puts)
    assert all(p["admin_id"] == int(ADMIN_ID) for p in puts)
    assert routing_calls(model) == 2
    [prompt] = [
        r["messages"][-1]["content"]
        for r in model.chat_requests
        if "Locked out" in r["messages"][-1]["content"]
    ]
    assert "I forgot my password and 2FA phone" in prompt
    record = app.store.ticket(billing)
    assert record is not None and record.state is TicketState.ASSIGNED
    assert record.route.team_name == "Billing"
    assert app.metrics is not None
    assert app.metrics.value("intercom_responder_routed_tickets_total", {"team": "Billing"}) == 1

    app.poller.poll_once()  # nothing new
    app.close()
    restarted = make_app(ROUTE_TICKETS="true")
    restarted.poller.poll_once()  # nor after a restart
    assert routing_calls(model) == 2 and len(ticket_puts(teams)) == 2
    assert restarted.store.ticket_cursor is not None


def test_a_restart_between_classification_and_assignment_assigns_once_without_asking_again(
    teams: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, tmp_path: Path
) -> None:
    labelled_model(model)
    ticket = teams.create_ticket("Refund", "Please refund my order")
    with StateStore(tmp_path / "sessions.json") as store:  # died after recording the route
        store.put_ticket(TicketRecord.routed(ticket, RouteTaken("4001", "Billing", 0.8, "refund")))
    app = make_app(ROUTE_TICKETS="true")

    app.poller.poll_once()
    app.poller.poll_once()

    assert team_of(teams, ticket) == 4001
    assert len(ticket_puts(teams)) == 1 and routing_calls(model) == 0


def teammate_assigns(intercom: FakeIntercom, ticket_id: str, team_id: str) -> None:
    answer = requests.put(
        f"{intercom.base_url}/tickets/{ticket_id}",
        json={"admin_id": int(TEAMMATE_ID), "assignee_id": team_id},
        headers={"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.16"},
        timeout=5,
    )
    assert answer.status_code == 200, answer.text


def test_a_teammate_who_assigns_the_ticket_while_the_model_thinks_wins(
    teams: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    ticket = teams.create_ticket("Refund", "Please refund my order")

    def slow_model(request: dict[str, Any]) -> str:
        teammate_assigns(teams, ticket, "4242")  # Tina is faster than the classification
        return json.dumps({"team": "Billing", "confidence": 0.9, "reason": "a refund"})

    model.reply = slow_model
    app = make_app(ROUTE_TICKETS="true")
    app.poller.poll_once()

    assert team_of(teams, ticket) == 4242
    assert [p["admin_id"] for p in ticket_puts(teams)] == [int(TEAMMATE_ID)]  # only hers
    record = app.store.ticket(ticket)
    assert record is not None and record.state is TicketState.TAKEN


def test_a_teammate_who_gives_the_ticket_a_team_during_a_restart_wins(
    teams: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, tmp_path: Path
) -> None:
    labelled_model(model)
    ticket = teams.create_ticket("Refund", "Please refund my order")
    with StateStore(tmp_path / "sessions.json") as store:
        store.put_ticket(TicketRecord.routed(ticket, RouteTaken("4001", "Billing", 0.8, "refund")))
    teammate_assigns(teams, ticket, "4242")  # while the daemon is down
    app = make_app(ROUTE_TICKETS="true")

    app.poller.poll_once()

    assert team_of(teams, ticket) == 4242
    assert [p["admin_id"] for p in ticket_puts(teams)] == [int(TEAMMATE_ID)]  # only hers
    record = app.store.ticket(ticket)
    assert record is not None and record.state is TicketState.TAKEN


@pytest.mark.parametrize(("fallback", "expected"), [("4242", 4242), (None, 0)])
def test_a_low_confidence_route_falls_back_to_the_handoff_team_or_leaves_it(
    teams: FakeIntercom,
    model: FakeOpenAI,
    make_app: MakeApp,
    fallback: str | None,
    expected: int,
) -> None:
    labelled_model(model, confidence=0.3)
    ticket = teams.create_ticket("Charged twice", "charged twice")
    app = make_app(ROUTE_TICKETS="true", **({"HANDOFF_TEAM_ID": fallback} if fallback else {}))

    app.poller.poll_once()
    app.poller.poll_once()

    assert team_of(teams, ticket) == expected
    assert len(ticket_puts(teams)) == (1 if fallback else 0) and routing_calls(model) == 1
    record = app.store.ticket(ticket)
    assert record is not None and record.route.fallback == "low_confidence"
    assert record.state is (TicketState.ASSIGNED if fallback else TicketState.UNASSIGNED)
    assert app.metrics is not None
    labels = {"cause": "low_confidence"}
    assert app.metrics.value("intercom_responder_routing_fallbacks_total", labels) == 1


def test_a_failed_assignment_is_tried_again_with_the_same_route(
    teams: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    labelled_model(model)
    ticket = teams.create_ticket("Charged twice", "charged twice")
    teams.fail_next("PUT", r"^/tickets/\d+$", 403)  # e.g. a token without the tickets scope
    app = make_app(ROUTE_TICKETS="true")

    app.poller.poll_once()
    record = app.store.ticket(ticket)
    assert record is not None and record.state is TicketState.ROUTED
    assert record.last_error and "403" in record.last_error
    app.poller.poll_once()

    assert team_of(teams, ticket) == 4001 and routing_calls(model) == 1
    record = app.store.ticket(ticket)
    assert record is not None and record.state is TicketState.ASSIGNED


def test_a_dry_run_shows_where_tickets_would_go_and_assigns_nothing(
    teams: FakeIntercom, model: FakeOpenAI, make_app: MakeApp, tmp_path: Path
) -> None:
    labelled_model(model)
    ticket = teams.create_ticket("Locked out", "my password does not work")
    out = io.StringIO()
    app = make_app(dry_run=True, out=out, ROUTE_TICKETS="true")

    app.poller.poll_once()
    app.poller.poll_once()

    assert out.getvalue().count(f"ticket {ticket}: would assign it to team 4002") == 1
    assert "routing:    Account security, confidence 0.90" in out.getvalue()
    assert ticket_puts(teams) == [] and team_of(teams, ticket) == 0
    assert not (tmp_path / "sessions.json").exists()


def test_route_tickets_needs_a_model(tmp_path: Path) -> None:
    env = {  # GPT Trainer answers; nothing else needs an OpenAI-compatible model
        "INTERCOM_ACCESS_TOKEN": "t" * 10,
        "INTERCOM_ADMIN_ID": "1",
        "RESPONDER": "gpt-trainer",
        "GPT_TRAINER_API_KEY": "k",
        "GPT_TRAINER_CHATBOT_UUID": "0123456789abcdef0123456789abcdef",
        "MEMORY_TOP_K": "0",
    }
    assert not load_settings(env).route_tickets
    with pytest.raises(ConfigError) as caught:
        load_settings({**env, "ROUTE_TICKETS": "true"})
    assert caught.value.variable == "OPENAI_API_KEY" and "ROUTE_TICKETS" in str(caught.value)


def test_ticket_records_survive_a_reopen_and_a_journal_replay(tmp_path: Path) -> None:
    path = tmp_path / "sessions.json"
    route = RouteTaken(None, None, 0.2, "unsure", "low_confidence")
    with StateStore(path) as store:
        store.put_ticket(TicketRecord.routed("7001", route).left_unassigned())
        store.set_ticket_cursor(1_700_000_123)
    document = json.loads(path.read_text())
    assert document["tickets"]["7001"]["state"] == "UNASSIGNED"
    assert document["cursor"]["tickets_updated_at"] == 1_700_000_123
    with StateStore(path) as store:
        record = store.ticket("7001")
        assert record is not None and record.route == route
        assert store.ticket_cursor == 1_700_000_123


# --------------------------------------------------------------------------- dead letters


def test_a_dead_letter_is_routed_like_any_hand_off(
    teams: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    labelled_model(model)  # drafting fails: the message becomes a dead letter
    cid = waiting_customer(teams, "<p>I was charged twice, please refund</p>")
    app = make_app(ROUTING="true", MAX_ATTEMPTS="1")

    [outcome] = app.poller.poll_once().outcomes

    assert outcome.status == "failed"
    record = app.store.get(cid)
    assert record is not None and record.state is State.FAILED
    assert record.route is not None and record.route.team_name == "Billing"
    assert teams.conversation(cid)["team_assignee_id"] == 4001
    notes = [p["body"] for p in teams.parts(cid, author_id=ADMIN_ID, part_type="note")]
    assert any("Could not answer this conversation automatically" in n for n in notes)
    assert sum("Routed to <b>Billing</b>" in n for n in notes) == 1
    app.poller.poll_once()
    assert routing_calls(model) == 1


def test_without_routing_a_dead_letter_goes_to_the_handoff_team(
    teams: FakeIntercom, model: FakeOpenAI, make_app: MakeApp
) -> None:
    labelled_model(model)
    cid = waiting_customer(teams, "<p>I was charged twice</p>")
    app = make_app(MAX_ATTEMPTS="1", HANDOFF_TEAM_ID="4242")
    app.poller.poll_once()
    assert teams.conversation(cid)["team_assignee_id"] == 4242 and routing_calls(model) == 0
