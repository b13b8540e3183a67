"""`ask` and `memory`: tuning the answers without Intercom.

`ask` goes through `pipeline.propose`, the very function the daemon uses, so what it
prints is what the daemon would do with the same message (for a first message in a
conversation). `memory` talks to the backend directly, so its failures are shown
instead of being papered over as they are in the daemon.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from .cli import (
    EXIT_CYCLE_FAILED,
    EXIT_OK,
    build_recall,
    build_responder,
    open_answer_memory,
    pipeline_settings,
)
from .core.conversation import Message
from .core.markup import one_line

if TYPE_CHECKING:
    from datetime import date

    from .adapters.memory import AnswerMemory, MemoryHit
    from .config import Settings

EXIT_FAILED = EXIT_CYCLE_FAILED
EXIT_INTERRUPTED = 130  # as a shell reports Ctrl-C


def ask(settings: Settings, question: str, *, as_json: bool, out: TextIO) -> int:
    from .adapters.responder import ResponderError
    from .flow.pipeline import propose

    message = Message(
        part_id="ask",
        kind="comment",
        author_type="user",
        author_id="",
        author_name="",
        body_html="",
        text=question.strip(),
        created_at=int(time.time()),
    )
    recall = build_recall(settings) if settings.memory_top_k > 0 else None
    try:
        proposal = propose(
            responder=build_responder(settings),
            recall=recall,
            settings=pipeline_settings(settings),
            conversation_id="ask",
            customer_name="",
            transcript=(message,),
            pending=(message,),
        )
    except ResponderError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if recall is not None:
            recall.close()
    draft, decision = proposal.draft, proposal.decision
    memory_state = "off (MEMORY_TOP_K=0)" if recall is None else "ok"
    if recall is not None and recall.failures:
        memory_state = "unavailable (see the warning above)"
    if as_json:
        document: dict[str, Any] = {
            "question": question,
            "draft": draft.answer,
            "confidence": draft.confidence,
            "reasoning": draft.reasoning,
            "needs_human": draft.needs_human,
            "error": draft.error,
            "memory": memory_state,
            "memory_hits": [_hit_json(hit) for hit in proposal.hits],
            "decision": decision.action.value,
            "reason": decision.reason,
            "model": draft.model,
            "latency_seconds": round(draft.latency_seconds, 3),
        }
        print(json.dumps(document, ensure_ascii=False, indent=2), file=out)
        return EXIT_OK
    lines = [f"question:   {question}", f"memory:     {memory_state}, {len(proposal.hits)} hit(s)"]
    for hit in proposal.hits:
        lines.append(f"  {hit.score:.2f}  [{hit.source}] {one_line(hit.question)}")
        lines.append(f"        -> {one_line(hit.answer)}")
    lines.append("draft:")
    lines += [f"  {line}" for line in (draft.answer or "(empty)").splitlines()]
    lines.append(f"confidence: {draft.confidence:.2f}")
    lines.append(f"reasoning:  {draft.reasoning or '-'}")
    if draft.error:
        lines.append(f"error:      {draft.error}")
    lines.append(f"decision:   {decision.action.value} ({decision.reason})")
    print("\n".join(lines), file=out)
    return EXIT_OK


def memory_add(settings: Settings, question: str, answer: str, *, out: TextIO) -> int:
    if not question.strip() or not answer.strip():
        print("intercom-responder: the question and the answer must not be empty", file=sys.stderr)
        return EXIT_FAILED

    def add(memory: AnswerMemory) -> int:
        added = memory.add(question.strip(), answer.strip(), source="manual")
        print("added to the catalogue" if added else "already in the catalogue", file=out)
        return EXIT_OK

    return _with_memory(settings, add, out)


def memory_list(settings: Settings, *, limit: int, out: TextIO) -> int:
    def show(memory: AnswerMemory) -> int:
        entries = memory.entries(limit=limit)
        for entry in entries:
            where = f" conversation {entry.conversation_id}" if entry.conversation_id else ""
            print(f"{entry.id}  [{entry.source}]{where}  {entry.created_at}", file=out)
            print(f"  Q: {one_line(entry.question)}", file=out)
            print(f"  A: {one_line(entry.answer)}", file=out)
        print(
            f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} ({memory.backend})", file=out
        )
        return EXIT_OK

    return _with_memory(settings, show, out)


def memory_search(
    settings: Settings, text: str, *, limit: int | None, min_score: float | None, out: TextIO
) -> int:
    def search(memory: AnswerMemory) -> int:
        hits = memory.search(
            text,
            limit=limit if limit is not None else max(settings.memory_top_k, 1),
            min_score=min_score if min_score is not None else settings.memory_min_score,
        )
        for hit in hits:
            print(f"{hit.score:.2f}  [{hit.source}] {one_line(hit.question)}", file=out)
            print(f"      -> {one_line(hit.answer)}", file=out)
        print(f"{len(hits)} hit(s)", file=out)
        return EXIT_OK

    return _with_memory(settings, search, out)


def _with_memory(settings: Settings, action: Any, out: TextIO) -> int:
    from .adapters.memory import AnswerMemoryError

    try:
        memory = open_answer_memory(settings)
    except AnswerMemoryError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        result: int = action(memory)
        return result
    except AnswerMemoryError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        memory.close()


def _hit_json(hit: MemoryHit) -> dict[str, Any]:
    return {
        "id": hit.id,
        "score": round(hit.score, 4),
        "question": hit.question,
        "answer": hit.answer,
        "source": hit.source,
        "conversation_id": hit.conversation_id,
    }


def sync(
    settings: Settings, *, since: date | None, limit: int | None, dry_run: bool, out: TextIO
) -> int:
    from .adapters.intercom import IntercomError
    from .adapters.memory import AnswerMemoryError
    from .adapters.store import StateFileError, SyncProgress
    from .cli import EXIT_STATE, build_intercom
    from .flow.sync import HistorySync

    try:
        progress = SyncProgress(settings.state_file)
    except StateFileError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return EXIT_STATE
    memory: AnswerMemory | None = None
    try:
        if not dry_run:
            memory = open_answer_memory(settings)
        result = HistorySync(
            intercom=build_intercom(settings),
            memory=memory,
            progress=progress,
            admin_id=settings.intercom_admin_id,
            out=out,
        ).run(since=since, limit=limit)
    except (IntercomError, AnswerMemoryError) as exc:
        print(
            f"intercom-responder: sync stopped: {exc}. What was done is kept; run the same "
            "command again to continue.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        if memory is not None:
            memory.close()
        progress.close()
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK


def dlq_list(settings: Settings, *, out: TextIO) -> int:
    """Dead letters, read without locking so it works beside a running daemon."""
    from datetime import UTC, datetime

    from .adapters.store import StateFileError, StateStore
    from .cli import EXIT_STATE

    try:
        store = StateStore(settings.state_file, read_only=True)
    except StateFileError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return EXIT_STATE
    letters = sorted(store.dead_letters(), key=lambda r: r.updated_at)
    for record in letters:
        when = datetime.fromtimestamp(record.updated_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(
            f"{record.conversation_id}  {record.attempts} attempts  last {when}\n"
            f"  {one_line(record.last_error or 'unknown error', 300)}",
            file=out,
        )
    print(
        f"{len(letters)} dead letter(s)"
        + (" - `python main.py dlq retry [ID]` puts them back in the queue" if letters else ""),
        file=out,
    )
    return EXIT_OK


def dlq_retry(settings: Settings, conversation_id: str | None, *, out: TextIO) -> int:
    """Back in the queue: directly, or through a request file when the daemon runs."""
    from .adapters.store import StateFileError, StateLockedError, StateStore, request_retry
    from .cli import EXIT_STATE

    which = f"conversation {conversation_id}" if conversation_id else "all dead letters"
    try:
        store = StateStore(settings.state_file)
    except StateLockedError:
        request_retry(settings.state_file, conversation_id)
        print(f"the running daemon will retry {which} at its next poll", file=out)
        return EXIT_OK
    except StateFileError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return EXIT_STATE
    with store:
        retried = store.retry_dead_letters(conversation_id)
    if not retried:
        print(f"no dead letter matched ({which})", file=sys.stderr)
        return EXIT_FAILED
    print(f"back in the queue: {', '.join(retried)}", file=out)
    return EXIT_OK
