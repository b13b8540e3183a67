"""Routing: a hand-off goes to the team that should answer, with the reason in a note.

The workspace's teams are read from Intercom (`GET /teams`), kept for an hour, and read
again after an assignment Intercom refused for an unknown team. The routing file adds
what each team does. A classification that cannot be used falls back to
HANDOFF_TEAM_ID, or leaves the conversation unassigned; either way the note says why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from ..adapters.intercom import IntercomClient, IntercomError
from ..adapters.team_classifier import TeamClassifier
from ..core.records import RouteTaken
from ..core.routing import Route, Team, TeamNotes, describe_teams
from ..defaults import TEAMS_REFRESH_SECONDS

log = logging.getLogger(__name__)


class Router:
    def __init__(
        self,
        *,
        intercom: IntercomClient,
        classifier: TeamClassifier,
        notes: Mapping[str, TeamNotes],
        fallback_team_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._intercom = intercom
        self._classifier = classifier
        self._notes = dict(notes)
        self.fallback_team_id = fallback_team_id
        self._clock = clock
        self._lock = threading.Lock()
        self._teams: list[Team] = []
        self._read_at: float | None = None
        self._warned = False

    def route(self, customer_texts: Sequence[str], *, about: str) -> RouteTaken:
        """One classification; never raises (a failure is a fallback with its cause)."""
        route = self._classifier.classify(self.teams(), customer_texts, about=about)
        return _taken(route)

    def teams(self) -> list[Team]:
        with self._lock:
            read_at = self._read_at
            if read_at is not None and self._clock() - read_at < TEAMS_REFRESH_SECONDS:
                return list(self._teams)
            try:
                workspace = [
                    (str(t.get("id")), str(t.get("name") or ""))
                    for t in self._intercom.list_teams()
                    if t.get("id") is not None
                ]
            except IntercomError as exc:  # route by what we knew, or fall back
                log.warning("routing: could not read the teams (GET /teams): %s", exc)
                return list(self._teams)
            self._teams, unmatched = describe_teams(workspace, self._notes)
            self._read_at = self._clock()
            if unmatched and not self._warned:
                self._warned = True
                log.warning(
                    "routing: ROUTING_FILE describes team(s) this workspace does not have: %s",
                    ", ".join(unmatched),
                )
            return list(self._teams)

    def forget_teams(self) -> None:
        """Read the teams again next time (Intercom refused a team we knew)."""
        with self._lock:
            self._read_at = None


def _taken(route: Route) -> RouteTaken:
    usable = route.team is not None and route.fallback is None
    return RouteTaken(
        team_id=route.team.id if usable and route.team else None,
        team_name=route.team.name if usable and route.team else None,
        confidence=route.confidence,
        reason=route.reason,
        fallback=route.fallback.value if route.fallback is not None else None,
    )
