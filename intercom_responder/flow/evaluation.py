"""`python main.py eval`: how good the answers would be, from the team's own past.

Each past question a teammate answered is drafted exactly as the daemon would (the same
prompt, responder, memory search and policy), then a judge compares the draft with the
teammate's answer. Honest by construction:
- no leakage: the memory the drafts search is a temporary local one, filled in time
  order, so a question only finds answers given before it was asked (and the team's
  knowledge pieces, copied in at the start), never its own answer or a later one;
- nothing is written: Intercom is only read, the state file is never opened, the team's
  memory is only read (its knowledge pieces), the temporary memory is deleted;
- a model error on one pair marks that pair failed, the others go on; Ctrl-C stops
  cleanly and the report covers what was done.

Drafts and judgements are cached in `--out` (`cache.jsonl`), keyed by everything that
decides them, so a rerun with the same settings pays for nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..adapters.intercom import IntercomClient, IntercomError
from ..core.conversation import Conversation, ConversationFormatError, Message
from ..core.draft import parse_judgement
from ..core.evaluation import PairResult, lexical_similarity
from ..core.history import qa_pairs
from ..core.prompts import JUDGE_SCHEMA, JUDGE_SYSTEM_PROMPT, build_judge_prompt
from ..core.text import one_line
from ..errors import IntercomResponderError
from .drafting import Drafter

if TYPE_CHECKING:
    from ..adapters.memory import AnswerMemory
    from ..adapters.responder import ChatModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalPair:
    """One question to draft for, and the answer it should agree with."""

    question: str
    expected: str
    conversation_id: str | None = None
    asked_at: int | None = None
    answered_at: int | None = None


def past_pairs(
    intercom: IntercomClient, admin_id: str, *, since: int | None, limit: int
) -> list[EvalPair]:
    """The history sync's question-answer pairs, oldest question first, at most `limit`."""
    query = {"field": "updated_at", "operator": ">", "value": max((since or 1) - 1, 0)}
    ids = [str(s.get("id")) for s in intercom.search_conversations(query) if s.get("id")]
    pairs: list[EvalPair] = []
    for conversation_id in dict.fromkeys(ids):
        try:
            conversation = Conversation.from_api(intercom.get_conversation(conversation_id))
        except IntercomError as exc:
            if exc.status == 404:
                continue
            raise
        except ConversationFormatError as exc:
            log.warning("conversation %s: skipped, unreadable: %s", conversation_id, exc)
            continue
        times = {m.part_id: m.created_at for m in conversation.messages}
        for pair in qa_pairs(conversation, admin_id).pairs:
            asked = min((times.get(p, pair.answered_at) for p in pair.question_part_ids), default=0)
            if since is not None and asked < since:
                continue
            pairs.append(
                EvalPair(pair.question, pair.answer, pair.conversation_id, asked, pair.answered_at)
            )
    pairs.sort(key=lambda p: (p.asked_at or 0, p.conversation_id or ""))
    return pairs[:limit]


class EvalCache:
    """Drafts and judgements already paid for, one JSON line each, in `--out`."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    entry = json.loads(line)
                    self._entries[str(entry["key"])] = dict(entry["value"])
                except (ValueError, KeyError, TypeError):
                    log.warning("%s: line %d is not a cache entry; ignored", path, number)

    def get(self, key: str) -> dict[str, Any] | None:
        return self._entries.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._entries[key] = value
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"key": key, "value": value}, ensure_ascii=False) + "\n")


def cache_key(*parts: object) -> str:
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class EvalRun:
    results: list[PairResult] = field(default_factory=list)
    interrupted: bool = False
    cached_drafts: int = 0
    cached_judgements: int = 0


class Evaluation:
    def __init__(
        self,
        *,
        drafter: Drafter,
        judge: ChatModel,
        memory: AnswerMemory | None,
        fingerprint: Sequence[object],
        cache: EvalCache,
        out: TextIO | None = None,
        is_tty: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._drafter = drafter
        self._judge = judge
        self._memory = memory  # the temporary memory filled in time order (None: --questions)
        self._fingerprint = list(fingerprint)
        self._cache = cache
        self._out = out
        self._tty = is_tty
        self._clock = clock

    def run(self, pairs: Sequence[EvalPair]) -> EvalRun:
        run = EvalRun()
        known = sorted(
            (p for p in pairs if p.answered_at is not None), key=lambda p: p.answered_at or 0
        )
        taught = 0
        history = hashlib.sha256()
        started = self._clock()
        try:
            for index, pair in enumerate(pairs):
                if self._memory is not None and pair.asked_at is not None:
                    while taught < len(known) and (known[taught].answered_at or 0) < pair.asked_at:
                        self._teach(known[taught])
                        history.update(
                            cache_key(known[taught].question, known[taught].expected).encode()
                        )
                        taught += 1
                run.results.append(self._one(index, pair, history.hexdigest(), run))
                self._show(len(run.results), len(pairs), started)
        except KeyboardInterrupt:
            run.interrupted = True
        if self._out is not None and self._tty:
            self._out.write("\n")
        return run

    def _teach(self, pair: EvalPair) -> None:
        assert self._memory is not None
        if pair.question.strip() and pair.expected.strip():
            self._memory.add(
                pair.question, pair.expected, source="sync", conversation_id=pair.conversation_id
            )

    def _one(self, index: int, pair: EvalPair, history: str, run: EvalRun) -> PairResult:
        base = PairResult(
            index=index,
            conversation_id=pair.conversation_id,
            question=pair.question,
            expected=pair.expected,
            asked_at=pair.asked_at,
        )
        key = cache_key("draft", self._fingerprint, pair.question, pair.conversation_id, history)
        drafted = self._cache.get(key)
        if drafted is not None:
            run.cached_drafts += 1
        else:
            try:
                drafted = self._draft(pair)
            except IntercomResponderError as exc:
                return replace(base, error=one_line(exc, 300))
            self._cache.put(key, drafted)
        result = replace(
            base,
            draft=str(drafted["draft"]),
            confidence=float(drafted["confidence"]),
            action=str(drafted["action"]),
            rule=str(drafted["rule"]),
            reason=str(drafted["reason"]),
            similarity=lexical_similarity(str(drafted["draft"]), pair.expected),
        )
        if drafted.get("error"):
            return replace(result, error=str(drafted["error"]))
        if not result.draft.strip():
            return replace(result, judge_reason="no draft to judge")
        return self._judged(result, run)

    def _draft(self, pair: EvalPair) -> dict[str, Any]:
        message = Message.typed(pair.question, part_id="eval", created_at=pair.asked_at or 0)
        proposal = self._drafter.propose(
            conversation_id=f"eval {pair.conversation_id or 'question'}",
            customer_name="",
            transcript=(message,),
            pending=(message,),
        )
        draft, decision = proposal.draft, proposal.decision
        return {
            "draft": draft.answer,
            "confidence": draft.confidence,
            "action": decision.action.value,
            "rule": decision.rule,
            "reason": decision.reason,
            # a draft the model could not make (its error) is a failed pair, not a bad answer
            "error": draft.error if draft.error and decision.rule == "unusable_reply" else None,
        }

    def _judged(self, result: PairResult, run: EvalRun) -> PairResult:
        key = cache_key("judge", self._judge.model, result.question, result.expected, result.draft)
        judged = self._cache.get(key)
        if judged is not None:
            run.cached_judgements += 1
        else:
            try:
                content, problem, _ = self._judge.reply(
                    JUDGE_SYSTEM_PROMPT,
                    build_judge_prompt(
                        question=result.question, expected=result.expected, draft=result.draft
                    ),
                    "judge_answer",
                    JUDGE_SCHEMA,
                    about=f"eval pair {result.index + 1}",
                )
            except IntercomResponderError as exc:
                return replace(result, error=f"judge: {one_line(exc, 300)}")
            judgement = parse_judgement(content) if problem is None else None
            if judgement is None or judgement.agreement is None:
                why = problem or (judgement.error if judgement else "") or "no judgement"
                return replace(result, error=f"judge: {why}")
            judged = {"agreement": judgement.agreement, "reason": judgement.reason}
            self._cache.put(key, judged)
        return replace(
            result, agreement=float(judged["agreement"]), judge_reason=str(judged["reason"])
        )

    def _show(self, done: int, total: int, started: float) -> None:
        if self._out is None:
            return
        elapsed = self._clock() - started
        status = f"{done}/{total} pairs ({elapsed:.0f} s)"
        if self._tty:
            width = 24
            filled = width * done // total if total else width
            self._out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {status} ")
            self._out.flush()
        elif done == total or done % 10 == 0:
            print(status, file=self._out, flush=True)


def questions_pairs(questions: Iterable[tuple[str, str]]) -> list[EvalPair]:
    """A hand-written test set: no conversation, no time, no memory filled for it."""
    return [EvalPair(question, expected) for question, expected in questions]
