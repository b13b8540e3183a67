"""One exception tree: every failure says which dependency it is about."""

from __future__ import annotations

import pytest

from intercom_responder.adapters.breaker import CircuitBreaker, CircuitOpenError
from intercom_responder.adapters.files import StateFileError, StateLockedError
from intercom_responder.adapters.intercom import AmbiguousWriteError, IntercomError
from intercom_responder.adapters.memory import AnswerMemoryError, MemoryInUseError
from intercom_responder.adapters.responder import ResponderError
from intercom_responder.adapters.slack import ReviewError
from intercom_responder.core.conversation import Conversation, ConversationFormatError
from intercom_responder.errors import Dependency, IntercomResponderError, dependency_of


@pytest.mark.parametrize(
    ("error", "dependency"),
    [
        (IntercomError("GET", "/me", status=500), Dependency.INTERCOM),
        (AmbiguousWriteError("POST", "/conversations/1/reply"), Dependency.INTERCOM),
        (ConversationFormatError("not a conversation"), Dependency.INTERCOM),
        (ResponderError("model down"), Dependency.LLM),
        (AnswerMemoryError("mem0 down"), Dependency.MEM0),
        (MemoryInUseError("held by the daemon"), Dependency.MEM0),
        (ReviewError("Slack chat.postMessage failed"), Dependency.SLACK),
        (StateFileError("sessions.json: not JSON"), Dependency.STATE),
        (StateLockedError("sessions.json: in use"), Dependency.STATE),
        (RuntimeError("a bug"), Dependency.INTERNAL),
    ],
)
def test_each_failure_names_its_dependency(error: Exception, dependency: Dependency) -> None:
    assert dependency_of(error) is dependency


def test_an_open_breaker_names_the_dependency_it_guards() -> None:
    breaker = CircuitBreaker("llm", failure_threshold=1)
    breaker.failure()
    with pytest.raises(CircuitOpenError) as caught:
        breaker.check()
    assert isinstance(caught.value, IntercomResponderError)
    assert dependency_of(caught.value) is Dependency.LLM


def test_an_unreadable_conversation_is_still_a_value_error_for_callers() -> None:
    with pytest.raises(ValueError, match="conversation object"):
        Conversation.from_api({"no": "id"})
