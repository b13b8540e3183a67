"""Going in circles: the customer asks again what an AI answer was meant to settle.

A customer who repeats the question right after our answer is telling us the answer
did not help; a second answer from the same model rarely does better, so the
conversation goes to a person. Language-neutral on purpose: the words of the two
questions are compared, whatever the language (scripts without spaces by characters).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from .conversation import Message

#: Shared words (Jaccard) from which a new question counts as the same question again.
REPEAT_SIMILARITY = 0.5
#: A message needs this many words to be compared at all ("thanks", "ok?" are not questions).
MIN_REPEAT_WORDS = 3

_WORD = re.compile(r"\w+", re.UNICODE)
_SPACELESS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u0e00-\u0e7f]")


def words(text: str) -> set[str]:
    """Comparable words: case and accents folded; characters of spaceless scripts as pairs."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    found: set[str] = set()
    for token in _WORD.findall(folded):
        if _SPACELESS.search(token):
            found.update(token[i : i + 2] for i in range(max(len(token) - 1, 1)))
        elif len(token) > 1 and not token.isdigit():
            found.add(token)
    return found


def similarity(a: str, b: str) -> float:
    first, second = words(a), words(b)
    if not first or not second:
        return 0.0
    return len(first & second) / len(first | second)


def answered_question(
    transcript: Sequence[Message],
    pending: Sequence[Message],
    admin_id: str,
    not_answers: frozenset[str] = frozenset(),
) -> str | None:
    """What the customer asked before our last answer, when that answer is the newest
    comment of our side before the pending messages; None when a teammate spoke since."""
    pending_ids = {m.part_id for m in pending}
    earlier = [m for m in transcript if m.part_id not in pending_ids]
    our_answer = None
    for index in range(len(earlier) - 1, -1, -1):
        message = earlier[index]
        if message.is_our_side and message.part_id not in not_answers:
            our_answer = index if message.author_id == admin_id else None
            break
    if our_answer is None:
        return None
    question: list[str] = []
    for message in reversed(earlier[:our_answer]):
        if message.is_our_side and message.part_id not in not_answers:
            break
        if message.is_customer:
            question.append(message.text)
    return "\n".join(reversed(question)) or None


def repeats_the_question(
    transcript: Sequence[Message],
    pending: Sequence[Message],
    admin_id: str,
    not_answers: frozenset[str] = frozenset(),
) -> bool:
    """The pending messages ask what our last answer answered (so it did not help)."""
    previous = answered_question(transcript, pending, admin_id, not_answers)
    now = "\n".join(m.text for m in pending)
    if previous is None or len(words(now)) < MIN_REPEAT_WORDS:
        return False
    return similarity(now, previous) >= REPEAT_SIMILARITY
