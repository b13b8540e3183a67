"""Every rule that keeps a wrong answer from a customer."""

from __future__ import annotations

import pytest

from intercom_responder.core.draft import Draft
from intercom_responder.core.policy import (
    Action,
    PolicyRules,
    asks_for_human,
    check_before_drafting,
    decide,
    matched_keyword,
    parse_keywords,
)

RULES = PolicyRules(threshold=0.8)
GOOD = Draft(answer="You can reset it under Settings.", confidence=0.95)


def test_at_the_threshold_it_replies() -> None:
    decision = decide(Draft(answer="Yes.", confidence=0.8), ["Can I?"], RULES)
    assert decision.action is Action.REPLY
    assert "0.80 is at or above the threshold 0.80" in decision.reason


def test_below_the_threshold_a_human_reviews() -> None:
    decision = decide(Draft(answer="Maybe.", confidence=0.79), ["Can I?"], RULES)
    assert decision.action is Action.REVIEW
    assert "0.79 is below the threshold 0.80" in decision.reason


def test_an_unusable_reply_is_never_sent_whatever_its_confidence() -> None:
    draft = Draft(answer="text", confidence=1.0, error="the model's reply is not valid JSON")
    decision = decide(draft, ["q"], PolicyRules(threshold=0.0))
    assert decision.action is Action.REVIEW
    assert "not valid JSON" in decision.reason


def test_an_empty_draft_is_handed_off() -> None:
    decision = decide(Draft(answer="  \n", confidence=1.0), ["q"], RULES)
    assert decision.action is Action.HANDOFF and decision.reason == "the draft is empty"


def test_the_model_asking_for_a_human_wins_over_confidence() -> None:
    decision = decide(Draft(answer="I can't", confidence=0.99, needs_human=True), ["q"], RULES)
    assert decision.action is Action.HANDOFF
    assert decision.reason == "the model said a human should answer"


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("This is URGENT, my site is down", "urgent"),
        ("I will file a chargeback.", "chargeback"),
        ("Please cancel   my\naccount now", "cancel my account"),
        ("My lawyer will hear about this", "lawyer"),
        ("Formal complaint!", "complaint"),
    ],
)
def test_an_escalation_keyword_hands_off_even_a_confident_draft(text: str, keyword: str) -> None:
    decision = decide(GOOD, ["hello", text], RULES)
    assert decision.action is Action.HANDOFF
    assert decision.reason == f"the customer's message mentions {keyword!r}"


@pytest.mark.parametrize(
    "text",
    [
        "Is this urgently needed? No.",  # urgently is not urgent
        "I'm not complaining, just asking",
        "Can I cancel my subscription renewal date?",  # not 'cancel my account'
        "Our lawyers-only plan: how much is it?",  # lawyers is not lawyer
    ],
)
def test_keywords_match_whole_words_only(text: str) -> None:
    assert matched_keyword(text, RULES.escalation_keywords) is None
    assert decide(GOOD, [text], RULES).action is Action.REPLY


def test_custom_keywords_replace_the_defaults() -> None:
    rules = PolicyRules(escalation_keywords=parse_keywords("refund, data breach"))
    assert decide(GOOD, ["Where is my refund?"], rules).action is Action.HANDOFF
    assert decide(GOOD, ["We had a Data  Breach"], rules).action is Action.HANDOFF
    assert decide(GOOD, ["This is urgent"], rules).action is Action.REPLY


@pytest.mark.parametrize(
    "text",
    [
        "Can I talk to a person?",
        "I want to speak with a real human",
        "agent please",
        "Agent, please!",
        "Let me chat with someone from your team",
        "Is this a real person?",
        "I need a human being",
        "you're a bot, not a person. human please",
        "connect me to a representative",
    ],
)
def test_asking_for_a_human_hands_off(text: str) -> None:
    assert asks_for_human(text)
    decision = decide(GOOD, [text], RULES)
    assert decision.action is Action.HANDOFF
    assert decision.reason == "the customer asked for a human"


@pytest.mark.parametrize(
    "text",
    [
        "The agent in our office cannot log in",
        "How many people can use one account?",
        "Our support person told me to write here",
        "Does the human resources module export CSV?",
    ],
)
def test_ordinary_mentions_of_people_are_not_requests_for_a_human(text: str) -> None:
    assert not asks_for_human(text)


def test_the_ai_reply_limit_stops_loops_before_a_draft_is_made() -> None:
    rules = PolicyRules(max_ai_replies_per_hour=3)
    assert check_before_drafting(rules, 2) is None
    decision = check_before_drafting(rules, 3)
    assert decision is not None and decision.action is Action.HANDOFF
    assert "already sent 3 AI replies" in decision.reason
    assert "MAX_AI_REPLIES_PER_HOUR is 3" in decision.reason
    never = check_before_drafting(PolicyRules(max_ai_replies_per_hour=0), 0)
    assert never is not None and never.action is Action.HANDOFF


def test_keywords_are_parsed_from_a_comma_list() -> None:
    assert parse_keywords(" urgent,, Cancel my account ,urgent") == ("urgent", "Cancel my account")
