"""Past conversations -> question-answer pairs a teammate stood behind, without I/O.

Only a person's answer teaches the catalogue: a customer's message(s) followed by a
teammate's comment. Replies by the daemon's own teammate (`INTERCOM_ADMIN_ID`, whose
approved replies were learned when they were approved), bots and automations are not
teammate answers: the customer messages they answered are dropped, not paired with a
later comment. Notes, assignments and other non-comment parts are ignored.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from ..defaults import MAX_LEARNED_ANSWER_CHARS, MAX_LEARNED_QUESTION_CHARS
from .conversation import Conversation, Message

_ONLY_ATTACHMENTS = re.compile(r"^(?:\s*\[(?:attachment|image)(?::[^\]]*)?\]\s*)+$")


@dataclass(frozen=True)
class QAPair:
    question: str
    answer: str
    conversation_id: str
    question_part_ids: tuple[str, ...]
    answer_part_ids: tuple[str, ...]
    answered_at: int


@dataclass
class Extraction:
    pairs: list[QAPair]
    skipped: Counter[str]  # reason -> how many candidate pairs were dropped
    cut: int = 0  # questions or answers shortened to the limits


def qa_pairs(conversation: Conversation, admin_id: str) -> Extraction:
    result = Extraction(pairs=[], skipped=Counter())
    question: list[Message] = []
    answer: list[Message] = []
    for message in conversation.comments:
        if message.is_customer:
            if answer:
                _emit(conversation.id, question, answer, result)
                question, answer = [], []
            question.append(message)
        elif message.author_type == "admin" and message.author_id != admin_id:
            if question:
                answer.append(message)
        elif message.is_our_side:  # our own AI, a bot, an automation: not a person
            if answer:
                _emit(conversation.id, question, answer, result)
            elif question:
                result.skipped["answered by a bot or the AI"] += 1
            question, answer = [], []
    if answer:
        _emit(conversation.id, question, answer, result)
    return result


def _emit(
    conversation_id: str, question: list[Message], answer: list[Message], result: Extraction
) -> None:
    question_text = _joined(question)
    answer_text = _joined(answer)
    if not question_text:
        result.skipped["empty question"] += 1
        return
    if not answer_text:
        result.skipped["empty answer"] += 1
        return
    if _ONLY_ATTACHMENTS.match(question_text) or _ONLY_ATTACHMENTS.match(answer_text):
        result.skipped["attachments only"] += 1
        return
    if len(question_text) > MAX_LEARNED_QUESTION_CHARS:
        question_text = question_text[:MAX_LEARNED_QUESTION_CHARS]
        result.cut += 1
    if len(answer_text) > MAX_LEARNED_ANSWER_CHARS:
        answer_text = answer_text[:MAX_LEARNED_ANSWER_CHARS]
        result.cut += 1
    result.pairs.append(
        QAPair(
            question=question_text,
            answer=answer_text,
            conversation_id=conversation_id,
            question_part_ids=tuple(m.part_id for m in question),
            answer_part_ids=tuple(m.part_id for m in answer),
            answered_at=answer[-1].created_at,
        )
    )


def _joined(messages: list[Message]) -> str:
    return "\n\n".join(m.text.strip() for m in messages if m.text.strip())
