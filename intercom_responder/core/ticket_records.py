"""What ticket routing did for one ticket, and the only ways that can change.

The route is written before the assignment (`ROUTED`), so a restart between the two
assigns the ticket once, to the team chosen before, without asking the model again;
every other state is final, so a ticket is classified once, across restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from .records import RouteTaken


class TicketState(StrEnum):
    ROUTED = "ROUTED"  # the team is chosen and on disk; the assignment may not have happened
    ASSIGNED = "ASSIGNED"  # assigned to `assigned_to` (routing's team, or HANDOFF_TEAM_ID)
    UNASSIGNED = "UNASSIGNED"  # left as it was: no usable team and no HANDOFF_TEAM_ID
    TAKEN = "TAKEN"  # a teammate gave it a team before we did: theirs stands
    FAILED = "FAILED"  # the assignment kept failing (MAX_ATTEMPTS): left to the team


FINISHED_TICKET_STATES = frozenset(
    {TicketState.ASSIGNED, TicketState.UNASSIGNED, TicketState.TAKEN, TicketState.FAILED}
)


@dataclass(frozen=True)
class TicketRecord:
    ticket_id: str
    state: TicketState
    route: RouteTaken
    assigned_to: str | None = None  # the team id the ticket was given
    attempts: int = 0  # failed assignments of this route
    last_error: str | None = None
    updated_at: float = 0.0  # set by the store

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", TicketState(self.state))
        if not isinstance(self.route, RouteTaken):
            object.__setattr__(self, "route", RouteTaken.from_json(self.route))

    @classmethod
    def routed(cls, ticket_id: str, route: RouteTaken) -> TicketRecord:
        """The classification, on disk before the assignment."""
        return cls(ticket_id=ticket_id, state=TicketState.ROUTED, route=route)

    def assigned(self, team_id: str) -> TicketRecord:
        return replace(self, state=TicketState.ASSIGNED, assigned_to=team_id, last_error=None)

    def left_unassigned(self) -> TicketRecord:
        return replace(self, state=TicketState.UNASSIGNED, last_error=None)

    def taken(self, team_id: str) -> TicketRecord:
        """A teammate was faster: the ticket keeps their team."""
        return replace(self, state=TicketState.TAKEN, assigned_to=team_id, last_error=None)

    def assignment_failed(self, error: str, *, max_attempts: int) -> TicketRecord:
        """Try again next cycle, or give up after `max_attempts` failures."""
        attempts = self.attempts + 1
        state = TicketState.FAILED if attempts >= max_attempts else TicketState.ROUTED
        return replace(self, state=state, attempts=attempts, last_error=error)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "ticket_id" or value is None:
                continue
            document[f.name] = value.to_json() if isinstance(value, RouteTaken) else value
        return document

    @classmethod
    def from_json(cls, ticket_id: str, data: Any) -> TicketRecord:
        if not isinstance(data, dict):
            raise ValueError(f"ticket {ticket_id}: entry is not an object")
        state = data.get("state")
        if not isinstance(state, str) or state not in TicketState.__members__:
            raise ValueError(f"ticket {ticket_id}: unknown state {state!r}")
        try:
            return cls(
                ticket_id=ticket_id,
                state=TicketState(state),
                route=RouteTaken.from_json(data.get("route")),
                assigned_to=str(data["assigned_to"]) if data.get("assigned_to") else None,
                attempts=int(data.get("attempts") or 0),
                last_error=str(data["last_error"]) if data.get("last_error") else None,
                updated_at=float(data.get("updated_at") or 0.0),
            )
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"ticket {ticket_id}: {exc}") from None
