"""The send-or-review decision."""

from __future__ import annotations

from intercom_responder.draft import Draft
from intercom_responder.policy import Action, decide


def test_at_the_threshold_it_replies() -> None:
    decision = decide(Draft(answer="Yes.", confidence=0.8), threshold=0.8)
    assert decision.action is Action.REPLY
    assert "0.80 is at or above the threshold 0.80" in decision.reason


def test_below_the_threshold_a_human_reviews() -> None:
    decision = decide(Draft(answer="Maybe.", confidence=0.79), threshold=0.8)
    assert decision.action is Action.REVIEW
    assert "0.79 is below the threshold 0.80" in decision.reason


def test_an_unusable_reply_is_never_sent_whatever_its_confidence() -> None:
    draft = Draft(answer="text", confidence=1.0, error="the model's reply is not valid JSON")
    decision = decide(draft, threshold=0.0)
    assert decision.action is Action.REVIEW
    assert "not valid JSON" in decision.reason


def test_an_empty_draft_is_never_sent() -> None:
    assert decide(Draft(answer="  \n", confidence=1.0), threshold=0.5).action is Action.REVIEW


def test_the_model_asking_for_a_human_wins_over_confidence() -> None:
    decision = decide(Draft(answer="I can't", confidence=0.99, needs_human=True), threshold=0.5)
    assert decision.action is Action.REVIEW
    assert "human" in decision.reason
