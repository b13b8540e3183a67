"""The draft a model produced, and the strict reading of its JSON reply.

A reply that cannot be trusted is never dropped: it becomes a draft with confidence 0
and the reason in `error`, so the policy routes it to a human instead of the customer.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from ..defaults import MAX_DRAFT_CHARS


@dataclass(frozen=True)
class Draft:
    answer: str
    confidence: float
    reasoning: str = ""
    needs_human: bool = False
    error: str | None = None  # set when the model's reply was unusable
    model: str = ""
    latency_seconds: float = 0.0
    session_id: str | None = None  # for responders that keep a conversation session
    sources: tuple[int, ...] = ()  # the knowledge pieces it says it used (numbers from 1)
    language: str = ""  # ISO 639-1 code of the customer's language, as the model read it
    sentiment: str = ""  # how the customer sounds: positive, neutral, negative, frustrated

    @classmethod
    def unusable(cls, error: str, *, answer: str = "", model: str = "") -> Draft:
        return cls(answer=answer, confidence=0.0, reasoning="", error=error, model=model)


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL | re.IGNORECASE)


class _NotAnObjectError(ValueError):
    """The model's reply is no JSON object; the message says how."""

    def __init__(self, message: str, *, has_text: bool = False) -> None:
        super().__init__(message)
        self.has_text = has_text  # there was text, just not JSON: show it to the human


def _json_object(content: str | None) -> dict[str, Any]:
    """The JSON object in a model's reply (a ```json fence around it is allowed)."""
    if content is None or not content.strip():
        raise _NotAnObjectError("the model returned no content")
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _NotAnObjectError(
            f"the model's reply is not valid JSON ({exc.msg} at line {exc.lineno})",
            has_text=True,
        ) from None
    if not isinstance(data, dict):
        raise _NotAnObjectError(f"the model's reply is JSON {type(data).__name__}, not an object")
    return data


def _valid_confidence(value: Any) -> float | None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or not 0.0 <= value <= 1.0
    ):
        return None
    return float(value)


def parse_model_reply(content: str | None, *, model: str = "") -> Draft:
    """Read the model's reply: a JSON object with answer, confidence and reasoning."""
    try:
        data = _json_object(content)
    except _NotAnObjectError as exc:
        shown = _preview(content) if content and exc.has_text else ""
        return Draft.unusable(str(exc), answer=shown, model=model)
    answer = data.get("answer")
    reasoning = data.get("reasoning")
    reasoning_text = reasoning.strip() if isinstance(reasoning, str) else ""
    needs_human = data.get("needs_human") is True
    if not isinstance(answer, str) or not answer.strip():
        return Draft(
            answer="",
            confidence=0.0,
            reasoning=reasoning_text,
            needs_human=needs_human,
            error="the model's reply has no answer",
            model=model,
        )
    confidence = _valid_confidence(data.get("confidence"))
    if confidence is None:
        return Draft(
            answer=answer.strip(),
            confidence=0.0,
            reasoning=reasoning_text,
            needs_human=needs_human,
            error=(
                f"the model's confidence {data.get('confidence')!r} is not a number between 0 and 1"
            ),
            model=model,
        )
    if len(answer) > MAX_DRAFT_CHARS:
        return Draft(
            answer=answer[:MAX_DRAFT_CHARS],
            confidence=0.0,
            reasoning=reasoning_text,
            needs_human=needs_human,
            error=f"the answer is longer than {MAX_DRAFT_CHARS} characters",
            model=model,
        )
    return Draft(
        answer=answer.strip(),
        confidence=float(confidence),
        reasoning=reasoning_text,
        needs_human=needs_human,
        model=model,
        sources=_sources(data.get("sources")),
        language=_language(data.get("language")),
        sentiment=_sentiment(data.get("sentiment")),
    )


SENTIMENTS = ("positive", "neutral", "negative", "frustrated")


def _language(value: Any) -> str:
    """A two-letter code ("de", "pt-BR" -> "pt"); anything else is unknown ("")."""
    if not isinstance(value, str):
        return ""
    code = value.strip().lower().replace("_", "-").split("-")[0]
    return code if len(code) == 2 and code.isalpha() else ""


def _sentiment(value: Any) -> str:
    text = value.strip().lower() if isinstance(value, str) else ""
    return text if text in SENTIMENTS else ""


def _sources(value: Any) -> tuple[int, ...]:
    """The piece numbers the model names; anything that is not a whole number is ignored."""
    if not isinstance(value, list):
        return ()
    numbers: list[int] = []
    for item in value:
        if isinstance(item, bool):
            continue
        if isinstance(item, float) and item.is_integer():
            item = int(item)
        if isinstance(item, int) and item not in numbers:
            numbers.append(item)
    return tuple(numbers)


def _preview(content: str, limit: int = 2000) -> str:
    """Keep what the model said visible to the human, without flooding the note."""
    return content if len(content) <= limit else content[:limit] + " [...]"


@dataclass(frozen=True)
class Judgement:
    """How far a draft agrees with what a teammate answered (the eval's judge)."""

    agreement: float | None  # None: the judgement could not be read
    reason: str = ""
    error: str | None = None


def parse_judgement(content: str | None) -> Judgement:
    """Read a judge's reply: a JSON object with agreement (0..1) and reason."""
    try:
        data = _json_object(content)
    except _NotAnObjectError as exc:
        return Judgement(None, error=f"the judgement is unusable: {exc}")
    reason = data.get("reason")
    agreement = _valid_confidence(data.get("agreement"))
    if agreement is None:
        return Judgement(
            None,
            reason if isinstance(reason, str) else "",
            f"the agreement {data.get('agreement')!r} is not a number between 0 and 1",
        )
    return Judgement(agreement, reason.strip() if isinstance(reason, str) else "")


@dataclass(frozen=True)
class Grade:
    """A second model's judgement of an answer it did not write."""

    confidence: float
    reasoning: str = ""
    needs_human: bool = False
    error: str | None = None  # the grade could not be read: the answer goes to a person


def parse_grade(content: str | None) -> Grade:
    """Read a grader's reply: a JSON object with confidence, reasoning and needs_human."""
    try:
        data = _json_object(content)
    except _NotAnObjectError as exc:
        return Grade(confidence=0.0, error=f"the grade is unusable: {exc}")
    reasoning = data.get("reasoning")
    reasoning_text = reasoning.strip() if isinstance(reasoning, str) else ""
    confidence = _valid_confidence(data.get("confidence"))
    if confidence is None:
        return Grade(
            confidence=0.0,
            reasoning=reasoning_text,
            error=f"the grade's confidence {data.get('confidence')!r} is not between 0 and 1",
        )
    return Grade(confidence, reasoning_text, data.get("needs_human") is True)
