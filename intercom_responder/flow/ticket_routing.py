"""Ticket routing (ROUTE_TICKETS): each new ticket no team holds goes to the team that should.

Once each, across restarts, by the same means as replies: the route is on disk
(`ROUTED`) before `PUT /tickets/{id}`, and a record that is `ROUTED` after a restart is
assigned to the team chosen then, without asking the model again. The ticket is read
again right before the assignment: a teammate who gave it a team meanwhile wins.

The search is the conversation poll's, over tickets: open Customer tickets with no
team, changed since a cursor kept in the state store (Intercom's own `updated_at`, so
a ticket indexed late is still found). Run after every poll, as a maintenance task.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..adapters.intercom import IntercomClient, IntercomError
from ..adapters.store import Store
from ..core.records import RouteTaken
from ..core.text import one_line
from ..core.ticket_records import TicketRecord, TicketState
from ..core.tickets import Ticket, TicketShapeError, unassigned_tickets_query
from ..defaults import MAX_ATTEMPTS, OVERLAP_SECONDS
from .routing import Router

if TYPE_CHECKING:
    from ..adapters.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TicketOutcome:
    ticket_id: str
    state: TicketState
    route: RouteTaken
    team_id: str | None = None  # where it went (or, in a dry run, would go)
    error: str | None = None


@dataclass
class TicketCycle:
    found: int = 0
    outcomes: list[TicketOutcome] = field(default_factory=list)
    error: str | None = None


class TicketRouting:
    def __init__(
        self,
        *,
        intercom: IntercomClient,
        store: Store,
        router: Router,
        admin_id: str,
        lookback_seconds: float,
        dry_run: bool = False,
        max_attempts: int = MAX_ATTEMPTS,
        metrics: Metrics | None = None,
        report: Callable[[TicketOutcome], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._intercom = intercom
        self._store = store
        self._router = router
        self._admin_id = admin_id
        self._lookback = lookback_seconds
        self._dry_run = dry_run
        self._max_attempts = max_attempts
        self._metrics = metrics
        self._report = report
        self._clock = clock

    def run_once(self) -> TicketCycle:
        """Finish what a restart left, then route what the search finds. Never raises
        for one ticket; a failed search leaves the cursor where it was."""
        cycle = TicketCycle()
        for record in self._store.tickets_to_assign():
            self._finish(cycle, record, self._read(record.ticket_id))
        cursor = self._store.ticket_cursor
        since = int(self._clock() - self._lookback) if cursor is None else cursor - OVERLAP_SECONDS
        newest = cursor
        try:
            for data in self._intercom.search_tickets(unassigned_tickets_query(since)):
                cycle.found += 1
                try:
                    ticket = Ticket.from_api(data)
                except TicketShapeError as exc:
                    log.warning("ticket search: skipped an entry: %s", exc)
                    continue
                self._route(cycle, ticket)
                newest = max(newest or 0, ticket.updated_at)
        except IntercomError as exc:
            cycle.error = f"ticket search failed: {exc}"
            log.warning("routing: %s (the next poll tries again)", cycle.error)
            return cycle
        if newest and newest != cursor and not self._dry_run:
            self._store.set_ticket_cursor(newest)
        return cycle

    # --- the steps ------------------------------------------------------------------------

    def _route(self, cycle: TicketCycle, ticket: Ticket) -> None:
        if self._store.ticket(ticket.id) is not None:
            return  # classified before: finished, or retried from `tickets_to_assign`
        if ticket.team_id is not None or not ticket.open:
            return  # the search is eventually consistent: the ticket as it is now decides
        route = self._router.route(ticket.customer_texts(), about=f"ticket {ticket.id}")
        record = self._store.put_ticket(TicketRecord.routed(ticket.id, route))
        self._count_route(route)
        self._finish(cycle, record, self._read(ticket.id))  # as it is now, not as found

    def _finish(self, cycle: TicketCycle, record: TicketRecord, ticket: Ticket | None) -> None:
        """Assign a routed ticket, unless a teammate was faster; record what happened."""
        team_id = record.route.team_id or self._router.fallback_team_id
        if ticket is None:  # could not be read: try again next cycle
            outcome = TicketOutcome(record.ticket_id, record.state, record.route, team_id)
        elif ticket.team_id is not None and ticket.team_id != team_id:
            done = self._store.put_ticket(record.taken(ticket.team_id))
            outcome = TicketOutcome(ticket.id, done.state, done.route, ticket.team_id)
        elif team_id is None:
            done = self._store.put_ticket(record.left_unassigned())
            outcome = TicketOutcome(ticket.id, done.state, done.route)
        elif self._dry_run:  # kept in memory only: a looping dry run shows it once
            done = self._store.put_ticket(record.assigned(team_id))
            outcome = TicketOutcome(ticket.id, done.state, done.route, team_id)
        else:
            outcome = self._assign(record, team_id)
        cycle.outcomes.append(outcome)
        self._log(outcome)
        if self._report is not None:
            self._report(outcome)

    def _assign(self, record: TicketRecord, team_id: str) -> TicketOutcome:
        try:
            self._intercom.assign_ticket(
                record.ticket_id, admin_id=self._admin_id, assignee_id=team_id
            )
        except IntercomError as exc:
            if exc.status == 404 and record.route.team_id:
                self._router.forget_teams()  # perhaps the team is gone: read them again
            error = one_line(exc, 300)
            failed = self._store.put_ticket(
                record.assignment_failed(error, max_attempts=self._max_attempts)
            )
            return TicketOutcome(record.ticket_id, failed.state, failed.route, team_id, error)
        done = self._store.put_ticket(record.assigned(team_id))
        if self._metrics is not None:
            self._metrics.routed_tickets.labels(team=done.route.team_name or "fallback").inc()
        return TicketOutcome(record.ticket_id, done.state, done.route, team_id)

    def _read(self, ticket_id: str) -> Ticket | None:
        try:
            return Ticket.from_api(self._intercom.get_ticket(ticket_id))
        except IntercomError as exc:
            if exc.status == 404:  # deleted: nothing left to assign
                log.info("ticket %s: no longer exists; not assigned", ticket_id)
                record = self._store.ticket(ticket_id)
                if record is not None:
                    self._store.put_ticket(record.left_unassigned())
                return None
            log.warning("ticket %s: could not be read (%s); trying again later", ticket_id, exc)
            return None
        except TicketShapeError as exc:
            log.warning("ticket %s: unexpected answer (%s); trying again later", ticket_id, exc)
            return None

    def _count_route(self, route: RouteTaken) -> None:
        if self._metrics is not None and route.fallback:
            self._metrics.routing_fallbacks.labels(cause=route.fallback).inc()

    def _log(self, outcome: TicketOutcome) -> None:
        route = outcome.route
        where = {
            TicketState.ASSIGNED: f"assigned to team {outcome.team_id}",
            TicketState.UNASSIGNED: "left unassigned (no usable team, no HANDOFF_TEAM_ID)",
            TicketState.TAKEN: f"a teammate gave it team {outcome.team_id} first; left as is",
            TicketState.FAILED: f"gave up assigning it: {outcome.error}",
            TicketState.ROUTED: f"assignment pending ({outcome.error or 'not read'})",
        }[outcome.state]
        chosen = route.team_name or f"fallback ({route.fallback})"
        log.log(
            logging.WARNING if outcome.error else logging.INFO,
            "ticket %s: %s%s - routing chose %s, confidence %.2f: %s",
            outcome.ticket_id,
            "dry run: would be " if self._dry_run else "",
            where,
            chosen,
            route.confidence,
            route.reason,
            extra={"ticket_id": outcome.ticket_id, "event": f"ticket_{outcome.state.lower()}"},
        )
