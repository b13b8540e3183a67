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

    @classmethod
    def unusable(cls, error: str, *, answer: str = "", model: str = "") -> Draft:
        return cls(answer=answer, confidence=0.0, reasoning="", error=error, model=model)


_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL | re.IGNORECASE)


def parse_model_reply(content: str | None, *, model: str = "") -> Draft:
    """Read the model's reply: a JSON object with answer, confidence and reasoning."""
    if content is None or not content.strip():
        return Draft.unusable("the model returned no content", model=model)
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        return Draft.unusable(
            f"the model's reply is not valid JSON ({exc.msg} at line {exc.lineno})",
            answer=_preview(content),
            model=model,
        )
    if not isinstance(data, dict):
        return Draft.unusable(
            f"the model's reply is JSON {type(data).__name__}, not an object", model=model
        )
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
    confidence = data.get("confidence")
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or math.isnan(confidence)
        or not 0.0 <= confidence <= 1.0
    ):
        return Draft(
            answer=answer.strip(),
            confidence=0.0,
            reasoning=reasoning_text,
            needs_human=needs_human,
            error=f"the model's confidence {confidence!r} is not a number between 0 and 1",
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
    )


def _preview(content: str, limit: int = 2000) -> str:
    """Keep what the model said visible to the human, without flooding the note."""
    return content if len(content) <= limit else content[:limit] + " [...]"
