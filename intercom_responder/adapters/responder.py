"""The LLM call: a conversation in, a `Draft` with a confidence out.

Chat Completions through the official `openai` SDK, because every OpenAI-compatible
server (Azure, Ollama, vLLM, LM Studio...) speaks it. Structured output is asked for
first; a server that refuses `json_schema` is asked for `json_object`, then for plain
text, and the first mode that works is remembered.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..core.conversation import Message
from ..core.draft import Draft, parse_model_reply
from ..core.prompts import DRAFT_SCHEMA, SYSTEM_PROMPT, KnownAnswer, build_user_prompt
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


class Responder(Protocol):
    def draft(self, request: DraftRequest) -> Draft: ...


class ResponderError(IntercomResponderError):
    """The model could not be asked (network, auth, server error): try again later."""

    dependency = Dependency.LLM


class OpenAIResponder:
    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        timeout: float = OPENAI_TIMEOUT,
        max_retries: int = OPENAI_MAX_RETRIES,
    ) -> None:
        from openai import OpenAI  # heavy: imported only when a draft is needed

        self._client: OpenAI = OpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )
        self._model = model
        self._where = base_url or "the OpenAI API"
        self._format_index = 0
        self._format_lock = threading.Lock()

    def draft(self, request: DraftRequest) -> Draft:
        import openai

        messages: list[Any] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": build_user_prompt(
                    customer_name=request.customer_name,
                    transcript=request.transcript,
                    pending=request.pending,
                    known_answers=request.known_answers,
                ),
            },
        ]
        started = time.monotonic()
        with self._format_lock:
            index = self._format_index
        while True:
            mode = RESPONSE_FORMATS[index]
            try:
                completion = self._client.chat.completions.create(
                    model=self._model, messages=messages, **_format_arguments(mode)
                )
                break
            except openai.BadRequestError as exc:
                if index + 1 >= len(RESPONSE_FORMATS):
                    raise ResponderError(self._describe(request, exc)) from exc
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
                raise ResponderError(self._describe(request, exc)) from exc
        latency = time.monotonic() - started
        choices = getattr(completion, "choices", None) or []
        if not choices:
            return Draft.unusable("the model returned no choices", model=self._model)
        message = choices[0].message
        refusal = getattr(message, "refusal", None)
        if refusal:
            return Draft.unusable(f"the model refused: {one_line(refusal, 300)}", model=self._model)
        draft = parse_model_reply(message.content, model=self._model)
        return Draft(
            answer=draft.answer,
            confidence=draft.confidence,
            reasoning=draft.reasoning,
            needs_human=draft.needs_human,
            error=draft.error,
            model=draft.model,
            latency_seconds=latency,
        )

    def _describe(self, request: DraftRequest, exc: Exception) -> str:
        return (
            f"conversation {request.conversation_id}: model {self._model} at {self._where} "
            f"failed: {describe(exc)}"
        )


def _format_arguments(mode: str) -> dict[str, Any]:
    if mode == "json_schema":
        return {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "draft_reply", "strict": True, "schema": DRAFT_SCHEMA},
            }
        }
    if mode == "json_object":
        return {"response_format": {"type": "json_object"}}
    return {}
