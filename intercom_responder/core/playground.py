"""The playground's vocabulary and its input rules, without I/O.

A playground session is a conversation that lives in memory: the customer's messages,
the answers that were sent, and at most one draft waiting for a decision.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from ..defaults import PLAYGROUND_MAX_TEXT_CHARS
from ..errors import Dependency, IntercomResponderError


class PlaygroundInputError(IntercomResponderError, ValueError):
    """A request the playground cannot take (answered 400); the message says why."""

    dependency = Dependency.INTERNAL


class UnknownSessionError(IntercomResponderError, LookupError):
    """No playground session has that id (answered 404)."""

    dependency = Dependency.INTERNAL


class Mode(StrEnum):
    AUTO = "auto"  # what the daemon would send is sent at once
    MANUAL = "manual"  # every draft waits for Approve, Edit or Reject


class Verdict(StrEnum):
    APPROVE = "approve"
    EDIT = "edit"
    REJECT = "reject"


def message_text(raw: Any) -> str:
    """A customer message or an edited answer: text, not empty, not huge."""
    if not isinstance(raw, str):
        raise PlaygroundInputError("'text' must be a string")
    text = raw.strip()
    if not text:
        raise PlaygroundInputError("'text' is empty")
    if len(text) > PLAYGROUND_MAX_TEXT_CHARS:
        raise PlaygroundInputError(
            f"'text' is longer than {PLAYGROUND_MAX_TEXT_CHARS:,} characters"
        )
    return text


def mode(raw: Any) -> Mode:
    try:
        return Mode(raw if raw is not None else Mode.AUTO)
    except ValueError:
        raise PlaygroundInputError("'mode' must be 'auto' or 'manual'") from None


def verdict(raw: Any) -> Verdict:
    try:
        return Verdict(raw)
    except ValueError:
        raise PlaygroundInputError("'action' must be 'approve', 'edit' or 'reject'") from None
