"""The decision on a draft: send it, or put it in front of a human, with the reason.

Pure and small on purpose: every rule that can keep a wrong answer from a customer
lives here, where a test can pin it down without a server.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .draft import Draft


class Action(StrEnum):
    REPLY = "reply"  # send to the customer as the configured teammate
    REVIEW = "review"  # a human looks at the draft first (internal note, later Slack)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def decide(draft: Draft, threshold: float) -> Decision:
    if draft.error:
        return Decision(Action.REVIEW, f"model reply unusable: {draft.error}")
    if not draft.answer.strip():
        return Decision(Action.REVIEW, "the draft is empty")
    if draft.needs_human:
        return Decision(Action.REVIEW, "the model said a human should answer")
    if draft.confidence < threshold:
        return Decision(
            Action.REVIEW,
            f"confidence {draft.confidence:.2f} is below the threshold {threshold:.2f}",
        )
    return Decision(
        Action.REPLY,
        f"confidence {draft.confidence:.2f} is at or above the threshold {threshold:.2f}",
    )
