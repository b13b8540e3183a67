"""What handling one conversation came to: the status every part of the flow reports."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..adapters.memory import MemoryHit
    from ..core.draft import Draft
    from ..core.policy import Decision
    from ..core.records import RouteTaken


class Status(StrEnum):
    REPLIED = "replied"  # our reply went out
    NOTED = "noted"  # a draft went to the team as an internal note
    HANDED_OFF = "handed off"  # an internal note and the assignment: a person's turn
    IN_REVIEW = "in review"  # a draft waits in Slack
    RECOVERED = "recovered"  # our part was found after a restart: nothing sent again
    WAITING = "waiting"  # a debounce: looked at again when the customer has finished
    POSTPONED = "postponed"  # a dependency's breaker is open: later, no attempt counted
    SKIPPED = "skipped"  # nothing to do
    DROPPED = "dropped"  # drafted, but the conversation changed before sending
    ABANDONED = "abandoned"  # shutting down before sending; picked up at the next start
    FAILED = "failed"  # this attempt failed; retried, or a dead letter after MAX_ATTEMPTS
    DRY_RUN = "dry-run"  # what would have been done, shown and not done


#: The reason of a SKIPPED outcome when a replica on the same database holds the conversation.
CLAIMED_ELSEWHERE = "another replica is handling it"


@dataclass(frozen=True)
class Outcome:
    conversation_id: str
    status: Status
    reason: str
    decision: Decision | None = None
    draft: Draft | None = None
    memory_hits: tuple[MemoryHit, ...] = ()
    route: RouteTaken | None = None  # a dry run's hand-off: the team routing would choose
