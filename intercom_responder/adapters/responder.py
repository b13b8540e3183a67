"""The responder interface, and the OpenAI one: a conversation in, a `Draft` with a confidence out.

Every responder is a `Responder`: `draft(DraftRequest) -> Draft`. The pipeline knows
nothing else of it; a responder is one adapter module and a line in `bootstrap`.

Chat Completions through the official `openai` SDK, because every OpenAI-compatible
server (Azure, Ollama, vLLM, LM Studio...) speaks it. `OpenAIGrader` uses the same model
to judge an answer another responder wrote (GPT Trainer returns no confidence).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from ..core.conversation import Message
from ..core.draft import Draft, Grade, parse_grade, parse_model_reply
from ..core.prompts import (
    DRAFT_SCHEMA,
    GRADE_SCHEMA,
    GRADE_SYSTEM_PROMPT,
    SYSTEM_PROMPT,
    KnowledgePiece,
    KnownAnswer,
    build_grade_prompt,
    build_user_prompt,
)
from ..core.text import describe, one_line
from ..defaults import OPENAI_MAX_RETRIES, OPENAI_TIMEOUT
from ..errors import Dependency, IntercomResponderError

if TYPE_CHECKING:
    from openai import OpenAI

log = logging.getLogger(__name__)

RESPONSE_FORMATS: tuple[str, ...] = ("json_schema", "json_object", "none")


@dataclass(frozen=True)
class DraftRequest:
    conversation_id: str
    customer_name: str
    transcript: tuple[Message, ...]
    pending: tuple[Message, ...]
    session_id: str | None = None  # the responder's own session for this conversation
    known_answers: tuple[KnownAnswer, ...] = ()  # verified answers from the catalogue
    knowledge: tuple[KnowledgePiece, ...] = ()  # article and document pieces, numbered from 1
    images: tuple[str, ...] = ()  # VISION: the pending messages' images, as data URLs
    unreadable: tuple[str, ...] = ()  # VISION: "name (why)" of images that could not be read


class Responder(Protocol):
    def draft(self, request: DraftRequest) -> Draft: ...


class Grader(Protocol):
    """Gives a confidence to an answer a responder without one (GPT Trainer) wrote."""

    def grade(self, request: DraftRequest, answer: str) -> Grade: ...


class FixedGrader:
    """No model to grade with: every answer gets the same confidence (GPT_TRAINER_CONFIDENCE)."""

    def __init__(self, confidence: float) -> None:
        self._confidence = confidence

    def grade(self, request: DraftRequest, answer: str) -> Grade:
        return Grade(
            confidence=self._confidence,
            reasoning=f"not graded: GPT_TRAINER_CONFIDENCE is {self._confidence:g}",
        )


class ResponderError(IntercomResponderError):
    """The model could not be asked (network, auth, server error): try again later."""

    dependency = Dependency.LLM


class ChatModel:
    """One OpenAI-compatible chat model: a system and a user message in, the reply out.

    Structured output is asked for first; a server that refuses `json_schema` is asked
    for `json_object`, then for plain text, and the first mode that works is remembered.
    """

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        timeout: float = OPENAI_TIMEOUT,
        max_retries: int = OPENAI_MAX_RETRIES,
    ) -> None:
        from openai import OpenAI  # heavy: imported only when a model is needed

        self._client: OpenAI = OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
        self.model = model
        self._where = base_url or "the OpenAI API"
        self._format_index = 0
        self._format_lock = threading.Lock()

    def reply(
        self,
        system: str,
        user: str,
        schema_name: str,
        schema: dict[str, Any],
        *,
        about: str,
        images: Sequence[str] = (),
    ) -> tuple[str | None, str | None, float]:
        """(content, refusal or why there is none, seconds); `ResponderError` if not asked.

        `images`: data URLs (VISION), given as image parts beside the user's text.
        """
        import openai

        content: Any = user
        if images:
            content = [
                {"type": "text", "text": user},
                *({"type": "image_url", "image_url": {"url": url}} for url in images),
            ]
        messages: list[Any] = [
            {"role": "system", "content": system},
            {"role": "user", "content": content},
        ]
        started = time.monotonic()
        with self._format_lock:
            index = self._format_index
        while True:
            mode = RESPONSE_FORMATS[index]
            try:
                completion = self._client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    **_format_arguments(mode, schema_name, schema),
                )
                break
            except openai.BadRequestError as exc:
                if index + 1 >= len(RESPONSE_FORMATS):
                    raise ResponderError(self._describe(about, exc)) from exc
                index += 1
                log.info(
                    "model server refused response_format %s (%s); trying %s",
                    mode,
                    one_line(exc, 300),
                    RESPONSE_FORMATS[index],
                )
                with self._format_lock:
                    self._format_index = max(self._format_index, index)
            except openai.OpenAIError as exc:
                raise ResponderError(self._describe(about, exc)) from exc
        latency = time.monotonic() - started
        choices = getattr(completion, "choices", None) or []
        if not choices:
            return None, "the model returned no choices", latency
        message = choices[0].message
        refusal = getattr(message, "refusal", None)
        if refusal:
            return None, f"the model refused: {one_line(refusal, 300)}", latency
        return message.content, None, latency

    def _describe(self, about: str, exc: Exception) -> str:
        return f"{about}: model {self.model} at {self._where} failed: {describe(exc)}"


class OpenAIResponder:
    """Drafts with an OpenAI-compatible model: the answer and its confidence in one call."""

    def __init__(self, chat: ChatModel) -> None:
        self._chat = chat

    def draft(self, request: DraftRequest) -> Draft:
        user = build_user_prompt(
            customer_name=request.customer_name,
            transcript=request.transcript,
            pending=request.pending,
            known_answers=request.known_answers,
            knowledge=request.knowledge,
            unreadable=request.unreadable,
        )
        content, problem, latency = self._chat.reply(
            SYSTEM_PROMPT,
            user,
            "draft_reply",
            DRAFT_SCHEMA,
            about=f"conversation {request.conversation_id}",
            images=request.images,
        )
        model = self._chat.model
        if problem is not None:
            return replace(Draft.unusable(problem, model=model), latency_seconds=latency)
        return replace(parse_model_reply(content, model=model), latency_seconds=latency)


class OpenAIGrader:
    """Judges an answer another responder wrote: a confidence and a reason, one short call."""

    def __init__(self, chat: ChatModel) -> None:
        self._chat = chat

    def grade(self, request: DraftRequest, answer: str) -> Grade:
        user = build_grade_prompt(
            pending=request.pending,
            answer=answer,
            known_answers=request.known_answers,
            knowledge=request.knowledge,
        )
        content, problem, _ = self._chat.reply(
            GRADE_SYSTEM_PROMPT,
            user,
            "grade_reply",
            GRADE_SCHEMA,
            about=f"conversation {request.conversation_id} (grading)",
        )
        if problem is not None:
            return Grade(confidence=0.0, error=f"the grade is unusable: {problem}")
        return parse_grade(content)


def _format_arguments(mode: str, name: str, schema: dict[str, Any]) -> dict[str, Any]:
    if mode == "json_schema":
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "strict": True, "schema": schema},
            }
        }
    if mode == "json_object":
        return {"response_format": {"type": "json_object"}}
    return {}
