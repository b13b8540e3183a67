"""One exception tree, and the exit codes of the command line.

Every error the daemon raises on purpose derives from `IntercomResponderError` and says
which dependency failed (`dependency`), so metrics and logs label a failure by reading
one attribute instead of testing a chain of exception types. Imports nothing of the
package, so every layer may use it.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Dependency(StrEnum):
    """What failed; also the `dependency` label of the error metric."""

    INTERCOM = "intercom"
    LLM = "llm"  # the OpenAI-compatible model (drafting, or grading another's answers)
    GPT_TRAINER = "gpt_trainer"
    MEM0 = "mem0"
    SLACK = "slack"
    STATE = "state"  # the state file and the files beside it
    INTERNAL = "internal"  # a bug or an unexpected answer of ours


class IntercomResponderError(Exception):
    """Base of every error the daemon raises on purpose."""

    dependency: Dependency = Dependency.INTERNAL


def dependency_of(exc: BaseException) -> Dependency:
    """Which dependency `exc` is about; anything not ours counts as internal."""
    if isinstance(exc, IntercomResponderError):
        return exc.dependency
    return Dependency.INTERNAL


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # a poll cycle or a command failed
    CONFIG = 2  # a setting is missing or invalid (before any network call)
    STATE = 3  # the state file locked or unreadable, or the database unusable
    INTERRUPTED = 130  # Ctrl-C, as a shell reports it
