"""Tickets as routing sees them: what the customer wrote, and whether a team holds it.

Intercom 2.16 gives a ticket's `team_assignee_id` and `admin_assignee_id` as integers,
0 when unassigned (some answers have a string or null instead: all mean the same). The
customer's words are in `ticket_attributes`: `_default_title_` and
`_default_description_`, the latter sometimes HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .markup import html_to_text

#: The search's name for Customer tickets (`category`); Back-office and Tracker tickets
#: are made by teammates, who choose their team themselves.
CUSTOMER_CATEGORY_TERM = "request"


class TicketShapeError(ValueError):
    """A ticket in Intercom's answer lacks what routing needs (its `id`)."""


@dataclass(frozen=True)
class Ticket:
    id: str  # the API id (`/tickets/{id}`), not the number the Inbox shows
    title: str
    description: str
    team_id: str | None  # the team holding it, None when none does
    updated_at: int
    open: bool = True

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Ticket:
        ticket_id = data.get("id")
        if ticket_id in (None, ""):
            raise TicketShapeError(f"a ticket without an id: keys {sorted(data)}")
        attributes = data.get("ticket_attributes")
        if not isinstance(attributes, Mapping):
            attributes = {}
        updated_at = data.get("updated_at")
        return cls(
            id=str(ticket_id),
            title=_text(attributes.get("_default_title_")),
            description=_text(attributes.get("_default_description_")),
            team_id=_assignee(data.get("team_assignee_id")),
            updated_at=updated_at if isinstance(updated_at, int) else 0,
            open=data.get("open") is not False,
        )

    def customer_texts(self) -> list[str]:
        """What the classifier reads: the title and the description, as the customer wrote them."""
        return [text for text in (self.title, self.description) if text]


def _assignee(value: Any) -> str | None:
    if value in (None, "", 0, "0"):
        return None
    return str(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return html_to_text(value).strip() if "<" in value else value.strip()


def unassigned_tickets_query(since: int) -> dict[str, Any]:
    """Open Customer tickets no team holds, changed after `since` (`POST /tickets/search`).

    `team_assignee_id` is a String field in this search: "0" finds the unassigned (a
    null filter value is refused).
    """
    return {
        "operator": "AND",
        "value": [
            {"field": "updated_at", "operator": ">", "value": since},
            {"field": "open", "operator": "=", "value": True},
            {"field": "team_assignee_id", "operator": "=", "value": "0"},
            {"field": "category", "operator": "=", "value": CUSTOMER_CATEGORY_TERM},
        ],
    }
