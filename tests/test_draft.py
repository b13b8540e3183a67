"""Reading the model's reply: anything untrustworthy becomes a draft for a human."""

from __future__ import annotations

import json

import pytest

from intercom_responder.core.draft import parse_model_reply
from intercom_responder.defaults import MAX_DRAFT_CHARS


def test_a_good_reply_is_read() -> None:
    draft = parse_model_reply(
        json.dumps({"answer": " Reset it under Settings. ", "confidence": 0.9, "reasoning": "FAQ"})
    )
    assert draft.error is None
    assert draft.answer == "Reset it under Settings."
    assert draft.confidence == 0.9
    assert draft.reasoning == "FAQ"
    assert draft.needs_human is False


def test_a_fenced_json_reply_is_accepted() -> None:
    draft = parse_model_reply('```json\n{"answer": "Hi", "confidence": 1, "reasoning": ""}\n```')
    assert draft.error is None and draft.answer == "Hi" and draft.confidence == 1.0


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "no content"),
        ("   ", "no content"),
        ("Sure! Here is your answer.", "not valid JSON"),
        ('{"answer": "Hi", "confidence": 0.9', "not valid JSON"),
        ('["Hi", 0.9]', "not an object"),
        ('{"confidence": 0.9, "reasoning": "x"}', "has no answer"),
        ('{"answer": "  ", "confidence": 0.9}', "has no answer"),
        ('{"answer": 42, "confidence": 0.9}', "has no answer"),
        ('{"answer": "Hi", "confidence": 1.5}', "not a number between 0 and 1"),
        ('{"answer": "Hi", "confidence": -0.1}', "not a number between 0 and 1"),
        ('{"answer": "Hi", "confidence": "high"}', "not a number between 0 and 1"),
        ('{"answer": "Hi", "confidence": true}', "not a number between 0 and 1"),
        ('{"answer": "Hi", "confidence": NaN}', "not a number between 0 and 1"),
        ('{"answer": "Hi"}', "not a number between 0 and 1"),
    ],
)
def test_an_unusable_reply_has_confidence_zero_and_a_reason(
    content: str | None, error: str
) -> None:
    draft = parse_model_reply(content)
    assert draft.confidence == 0.0
    assert draft.error is not None and error in draft.error


def test_a_non_json_reply_keeps_the_text_for_the_human() -> None:
    draft = parse_model_reply("Sure! Reset it under Settings.")
    assert draft.answer == "Sure! Reset it under Settings."
    assert draft.confidence == 0.0


def test_a_runaway_answer_is_cut_and_not_trusted() -> None:
    draft = parse_model_reply(json.dumps({"answer": "x" * 50_000, "confidence": 0.99}))
    assert len(draft.answer) == MAX_DRAFT_CHARS
    assert draft.confidence == 0.0 and draft.error


def test_needs_human_is_read_only_when_literally_true() -> None:
    assert parse_model_reply('{"answer": "a", "confidence": 0.9, "needs_human": true}').needs_human
    assert not parse_model_reply(
        '{"answer": "a", "confidence": 0.9, "needs_human": "no"}'
    ).needs_human
