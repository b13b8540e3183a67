"""The decision on a draft: send it, ask a human to review it, or hand off to the team.

Pure and small on purpose: every rule that can keep a wrong answer from a customer
lives here, where a test can pin it down without a server. The order of the rules is
the order of their importance: what the customer said outranks what the model thinks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from ..defaults import CONFIDENCE_THRESHOLD, ESCALATION_KEYWORDS, MAX_AI_REPLIES_PER_HOUR
from .draft import Draft

# Plain-words requests for a person. Deliberately specific: "the agent said" must not
# trigger, "agent please" and "talk to a real person" must.
_HUMAN_REQUEST = re.compile(
    r"""
    \b(?:talk|speak|chat|connect\s+me|put\s+me\s+through)\s+(?:to|with)\s+
        (?:a|an|some|your|the)?\s*(?:real|live|actual|human)?\s*
        (?:person|human|agent|someone|somebody|representative|rep|operator|people|staff|teammate)\b
    | \b(?:real|actual|live)\s+(?:person|human|people|agent)\b
    | \bhuman\s+(?:being|agent|support|please)\b
    | \b(?:agent|human|operator|representative)\s*[,!.]?\s*please\b
    | \bnot\s+(?:a|an|the)?\s*(?:bot|robot|ai|machine)\b
    | \bstop\s+(?:the\s+)?(?:bot|robot|ai)\b
    """,
    re.IGNORECASE | re.VERBOSE,
)


class Action(StrEnum):
    REPLY = "reply"  # send to the customer as the configured teammate
    REVIEW = "review"  # a human looks at the draft first (Slack, or an internal note)
    HANDOFF = "handoff"  # internal note, assignment, and the AI stays out


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    rule: str = ""  # a short fixed code for metrics: the reason without the details


@dataclass(frozen=True)
class PolicyRules:
    threshold: float = CONFIDENCE_THRESHOLD
    escalation_keywords: tuple[str, ...] = ESCALATION_KEYWORDS
    max_ai_replies_per_hour: int = MAX_AI_REPLIES_PER_HOUR


def check_before_drafting(rules: PolicyRules, ai_replies_last_hour: int) -> Decision | None:
    """Rules that need no draft: no model call is spent on a conversation in a loop."""
    if ai_replies_last_hour >= rules.max_ai_replies_per_hour:
        return Decision(
            Action.HANDOFF,
            f"already sent {ai_replies_last_hour} AI replies in this conversation in the last "
            f"hour (MAX_AI_REPLIES_PER_HOUR is {rules.max_ai_replies_per_hour})",
            "ai_reply_limit",
        )
    return None


def decide(draft: Draft, customer_texts: Sequence[str], rules: PolicyRules) -> Decision:
    text = "\n".join(customer_texts)
    keyword = matched_keyword(text, rules.escalation_keywords)
    if keyword:
        return Decision(
            Action.HANDOFF, f"the customer's message mentions {keyword!r}", "escalation_keyword"
        )
    if asks_for_human(text):
        return Decision(Action.HANDOFF, "the customer asked for a human", "human_requested")
    if draft.error:
        return Decision(Action.REVIEW, f"model reply unusable: {draft.error}", "unusable_reply")
    if not draft.answer.strip():
        return Decision(Action.HANDOFF, "the draft is empty", "empty_draft")
    if draft.needs_human:
        return Decision(Action.HANDOFF, "the model said a human should answer", "model_needs_human")
    if draft.confidence < rules.threshold:
        return Decision(
            Action.REVIEW,
            f"confidence {draft.confidence:.2f} is below the threshold {rules.threshold:.2f}",
            "low_confidence",
        )
    return Decision(
        Action.REPLY,
        f"confidence {draft.confidence:.2f} is at or above the threshold {rules.threshold:.2f}",
        "confident",
    )


def matched_keyword(text: str, keywords: Sequence[str]) -> str | None:
    """The first escalation keyword in `text`, whole words only, any case."""
    for keyword in keywords:
        words = keyword.strip().split()
        if not words:
            continue
        pattern = r"\b" + r"\s+".join(re.escape(word) for word in words) + r"\b"
        if re.search(pattern, text, re.IGNORECASE):
            return keyword.strip()
    return None


def asks_for_human(text: str) -> bool:
    return _HUMAN_REQUEST.search(text) is not None


def parse_keywords(raw: str) -> tuple[str, ...]:
    """`ESCALATION_KEYWORDS`: comma separated, blanks ignored, case kept for messages."""
    return tuple(dict.fromkeys(k.strip() for k in raw.split(",") if k.strip()))
