"""GPT Trainer as the responder: a hosted chatbot trained on the team's own documents.

One GPT Trainer session per Intercom conversation: the session keeps the history, so
only the customer's pending messages are sent (with the verified answers of the memory,
marked as the team's context). The session id travels in `DraftRequest.session_id` and
`Draft.session_id`; the pipeline keeps it in the state store with its expiry. A session
GPT Trainer no longer knows (404) is replaced by a new one and the message is asked
again, once.

The answer arrives as a stream of plain text and is read to its end: a stream cut midway
is an error, never a partial answer. GPT Trainer gives no confidence; a `Grader` does
(the OpenAI model when OPENAI_API_KEY is set, else GPT_TRAINER_CONFIDENCE).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import requests

from .. import __version__
from ..core.draft import Draft
from ..core.prompts import build_session_query
from ..core.text import describe, one_line
from ..defaults import CONNECT_TIMEOUT, GPT_TRAINER_API_URL, GPT_TRAINER_TIMEOUT, MAX_DRAFT_CHARS
from ..errors import Dependency
from .responder import DraftRequest, Grader, ResponderError

log = logging.getLogger(__name__)

#: Tries of one call that failed with 429, 5xx or a connection error.
ATTEMPTS = 3


class GPTTrainerError(ResponderError):
    """GPT Trainer refused or could not be reached; the message says what to check."""

    dependency = Dependency.GPT_TRAINER


class _SessionGoneError(Exception):
    """GPT Trainer does not know the session (expired or deleted there)."""


class GPTTrainerResponder:
    def __init__(
        self,
        *,
        api_key: str,
        chatbot_uuid: str,
        grader: Grader,
        api_url: str = GPT_TRAINER_API_URL,
        timeout: float = GPT_TRAINER_TIMEOUT,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._chatbot = chatbot_uuid
        self._grader = grader
        self._url = api_url.rstrip("/")
        self._timeout = timeout
        self._sleep = sleep
        self._http = session or requests.Session()
        self._http.headers.update(
            {
                "Authorization": f"Bearer {api_key}",
                "User-Agent": f"intercom-responder/{__version__}",
            }
        )
        self.model = f"gpt-trainer:{chatbot_uuid}"

    def draft(self, request: DraftRequest) -> Draft:
        started = time.monotonic()
        query = build_session_query(
            pending=request.pending,
            known_answers=request.known_answers,
            knowledge=request.knowledge,
        )
        session_id = request.session_id or self._new_session(request)
        try:
            answer = self._ask(session_id, query, request)
        except _SessionGoneError:
            log.info(
                "conversation %s: GPT Trainer no longer knows session %s; starting a new one",
                request.conversation_id,
                session_id,
            )
            session_id = self._new_session(request)
            try:
                answer = self._ask(session_id, query, request)
            except _SessionGoneError:
                raise GPTTrainerError(
                    self._about(request) + f"GPT Trainer session {session_id} vanished right "
                    "after it was created"
                ) from None
        latency = time.monotonic() - started
        return self._graded(request, answer.strip(), session_id, latency)

    def chatbot(self) -> dict[str, Any]:
        """The chatbot's own description (`check`): reads only, sends no message."""
        response = self._call("GET", f"/chatbot/{self._chatbot}", about="")
        data = _json(response, "")
        return data if isinstance(data, dict) else {}

    # --- the calls --------------------------------------------------------------------

    def _new_session(self, request: DraftRequest) -> str:
        response = self._call(
            "POST", f"/chatbot/{self._chatbot}/session/create", about=self._about(request), json={}
        )
        data = _json(response, self._about(request))
        uuid = data.get("uuid") if isinstance(data, dict) else None
        if not isinstance(uuid, str) or not uuid:
            raise GPTTrainerError(
                self._about(request) + "GPT Trainer's session/create answered without a uuid"
            )
        log.debug("conversation %s: GPT Trainer session %s", request.conversation_id, uuid)
        return uuid

    def _ask(self, session_id: str, query: str, request: DraftRequest) -> str:
        about = self._about(request)
        response = self._call(
            "POST",
            f"/session/{session_id}/message/stream",
            about=about,
            json={"query": query},
            stream=True,
            session_gone_on_404=True,
        )
        deadline = time.monotonic() + self._timeout
        chunks: list[bytes] = []
        try:
            for chunk in response.iter_content(chunk_size=None):
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise GPTTrainerError(
                        about + f"GPT Trainer's answer took longer than {self._timeout:g} s "
                        "(GPT_TRAINER_TIMEOUT); nothing of it is used"
                    )
        except requests.RequestException as exc:
            raise GPTTrainerError(
                about + f"GPT Trainer's answer broke off ({describe(exc)}); nothing of it is used"
            ) from exc
        finally:
            response.close()
        return b"".join(chunks).decode(response.encoding or "utf-8", errors="replace")

    def _call(
        self,
        method: str,
        path: str,
        *,
        about: str,
        json: Any = None,
        stream: bool = False,
        session_gone_on_404: bool = False,
    ) -> requests.Response:
        """One call, tried again after 429, 5xx and connection errors; other errors explained."""
        last: str = ""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self._http.request(
                    method,
                    self._url + path,
                    json=json,
                    stream=stream,
                    timeout=(min(CONNECT_TIMEOUT, self._timeout), self._timeout),
                )
            except requests.RequestException as exc:
                last = (
                    f"GPT Trainer cannot be reached at {self._url}: {describe(exc)} - check "
                    "GPT_TRAINER_API_URL"
                )
            else:
                status = response.status_code
                if status < 400:
                    return response
                detail = _detail(response)
                response.close()
                if status in (401, 403):
                    raise GPTTrainerError(
                        about + f"GPT Trainer refused the key (HTTP {status}{detail}) - check "
                        "GPT_TRAINER_API_KEY"
                    )
                if status == 404 and session_gone_on_404:
                    raise _SessionGoneError()
                if status == 404:
                    raise GPTTrainerError(
                        about + f"GPT Trainer knows no chatbot {self._chatbot} (HTTP 404"
                        f"{detail}) - check GPT_TRAINER_CHATBOT_UUID"
                    )
                if status != 429 and status < 500:
                    raise GPTTrainerError(
                        about + f"{method} {path} failed with HTTP {status}{detail}"
                    )
                last = f"GPT Trainer answered HTTP {status} to {method} {path}{detail}"
            if attempt < ATTEMPTS:
                self._sleep(random.uniform(0, 0.5 * 2 ** (attempt - 1)) + 0.1)
        raise GPTTrainerError(about + f"{last} (after {ATTEMPTS} tries)")

    # --- the answer -------------------------------------------------------------------

    def _graded(self, request: DraftRequest, answer: str, session_id: str, latency: float) -> Draft:
        common: dict[str, Any] = {
            "model": self.model,
            "latency_seconds": latency,
            "session_id": session_id,
        }
        if not answer:
            return Draft(
                answer="", confidence=0.0, error="GPT Trainer returned an empty answer", **common
            )
        if len(answer) > MAX_DRAFT_CHARS:
            return Draft(
                answer=answer[:MAX_DRAFT_CHARS],
                confidence=0.0,
                error=f"the answer is longer than {MAX_DRAFT_CHARS} characters",
                **common,
            )
        try:
            grade = self._grader.grade(request, answer)
        except ResponderError as exc:  # the answer exists: a person decides, it is not lost
            log.warning("conversation %s: grading failed: %s", request.conversation_id, exc)
            return Draft(
                answer=answer,
                confidence=0.0,
                error=f"the answer could not be graded ({one_line(exc, 200)})",
                **common,
            )
        return Draft(
            answer=answer,
            confidence=grade.confidence,
            reasoning=grade.reasoning,
            needs_human=grade.needs_human,
            error=grade.error,
            **common,
        )

    def _about(self, request: DraftRequest) -> str:
        return f"conversation {request.conversation_id}: "


def _json(response: requests.Response, about: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise GPTTrainerError(about + "GPT Trainer's answer is not JSON") from None


def _detail(response: requests.Response) -> str:
    try:
        text = response.text.strip()
    except Exception:  # a body that cannot be read adds nothing
        return ""
    return f": {one_line(text, 200)}" if text else ""
