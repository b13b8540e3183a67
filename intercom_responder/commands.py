"""The body of each command: the daemon itself, `ask`, `memory`, `sync` and `dlq`.

`cli` parses the arguments and calls one of these; `check` has a module of its own.
`ask` drafts through the daemon's own `Drafter`, so what it prints is what the daemon
would do with the same message (for a first message in a conversation). `memory` talks
to the backend directly, so its failures are shown instead of being papered over as
they are in the daemon. `dlq` works beside a running daemon (see `flow.dead_letters`).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from .bootstrap import build_drafter, build_intercom, build_recall, open_answer_memory
from .core.conversation import Message
from .core.knowledge import describe_pieces, piece_label
from .core.text import one_line
from .errors import ExitCode, IntercomResponderError

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

    from .adapters.memory import AnswerMemory, KnowledgeHit, MemoryHit
    from .config import Settings


def run_daemon(settings: Settings, *, once: bool, dry_run: bool, out: TextIO) -> int:
    """The daemon: poll until stopped (SIGTERM or Ctrl-C), or once with `--once`."""
    from .adapters.files import StateFileError
    from .adapters.web import WebStartError
    from .bootstrap import build_app

    log = logging.getLogger("intercom_responder")
    try:
        app = build_app(settings, dry_run=dry_run, out=out)
    except StateFileError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return ExitCode.STATE
    _install_signal_handlers(app.stopping)
    try:
        app.start(serve_health=not once, serve_webhook=not once)
    except WebStartError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        app.close()
        return ExitCode.CONFIG
    mode = " (dry run: nothing is written)" if dry_run else ""
    log.info(
        "intercom-responder starting%s: Intercom %s as admin %s, model %s, state %s",
        mode,
        settings.intercom_api_base,
        settings.intercom_admin_id,
        settings.openai_model,
        settings.state_file,
    )
    try:
        if once:
            result = app.poller.poll_once()
            return ExitCode.OK if result.ok or app.stopping.is_set() else ExitCode.FAILED
        app.poller.run_forever()
    finally:
        app.close()
    log.info("intercom-responder stopped")
    return ExitCode.OK


def _install_signal_handlers(stopping: threading.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("intercom_responder").info(
            "received %s: finishing in-flight work, then exiting (again to force)",
            signal.Signals(signum).name,
        )
        stopping.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def ask(settings: Settings, question: str, *, as_json: bool, out: TextIO) -> int:
    from .adapters.responder import ResponderError

    message = Message.typed(question.strip(), part_id="ask", created_at=int(time.time()))
    recall = build_recall(settings) if settings.memory_top_k > 0 else None
    try:
        proposal = build_drafter(settings, None, recall).propose(
            conversation_id="ask",
            customer_name="",
            transcript=(message,),
            pending=(message,),
        )
    except ResponderError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return ExitCode.FAILED
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
            "language": draft.language,
            "sentiment": draft.sentiment,
            "error": draft.error,
            "memory": memory_state,
            "memory_hits": [_hit_json(hit) for hit in proposal.hits],
            "knowledge": [
                {**_piece_json(piece), "used": piece in proposal.used_pieces()}
                for piece in proposal.pieces
            ],
            "decision": decision.action.value,
            "reason": decision.reason,
            "model": draft.model,
            "latency_seconds": round(draft.latency_seconds, 3),
        }
        print(json.dumps(document, ensure_ascii=False, indent=2), file=out)
        return ExitCode.OK
    lines = [f"question:   {question}", f"memory:     {memory_state}, {len(proposal.hits)} hit(s)"]
    for hit in proposal.hits:
        lines.append(f"  {hit.score:.2f}  [{hit.source}] {one_line(hit.question)}")
        lines.append(f"        -> {one_line(hit.answer)}")
    lines.append(f"knowledge:  {len(proposal.pieces)} piece(s) given to the draft")
    lines += [f"  {line}" for line in describe_pieces(proposal.pieces, draft.sources)]
    lines.append("draft:")
    lines += [f"  {line}" for line in (draft.answer or "(empty)").splitlines()]
    lines.append(f"confidence: {draft.confidence:.2f}")
    if draft.language or draft.sentiment:
        lines.append(f"customer:   {draft.language or '?'}, sounds {draft.sentiment or '?'}")
    lines.append(f"reasoning:  {draft.reasoning or '-'}")
    if draft.error:
        lines.append(f"error:      {draft.error}")
    lines.append(f"decision:   {decision.action.value} ({decision.reason})")
    print("\n".join(lines), file=out)
    return ExitCode.OK


def memory_add(settings: Settings, question: str, answer: str, *, out: TextIO) -> int:
    if not question.strip() or not answer.strip():
        print("intercom-responder: the question and the answer must not be empty", file=sys.stderr)
        return ExitCode.FAILED

    def add(memory: AnswerMemory) -> int:
        added = memory.add(question.strip(), answer.strip(), source="manual")
        print("added to the catalogue" if added else "already in the catalogue", file=out)
        return ExitCode.OK

    return _with_memory(settings, add, out)


def memory_list(settings: Settings, *, limit: int, source: str | None, out: TextIO) -> int:
    from .core.knowledge import SOURCES

    if source in SOURCES:
        return _with_memory(settings, lambda memory: _list_pieces(memory, source, limit, out), out)

    def show(memory: AnswerMemory) -> int:
        entries = memory.entries(limit=limit if source is None else 100_000)
        if source is not None:
            entries = [entry for entry in entries if entry.source == source][:limit]
        for entry in entries:
            where = f" conversation {entry.conversation_id}" if entry.conversation_id else ""
            print(f"{entry.id}  [{entry.source}]{where}  {entry.created_at}", file=out)
            print(f"  Q: {one_line(entry.question)}", file=out)
            print(f"  A: {one_line(entry.answer)}", file=out)
        print(
            f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} ({memory.backend})", file=out
        )
        return ExitCode.OK

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
        pieces = memory.search_pieces(
            text,
            limit=limit if limit is not None else max(settings.knowledge_top_k, 1),
            min_score=min_score if min_score is not None else settings.knowledge_min_score,
        )
        for piece in pieces:
            print(f"{piece.score:.2f}  [{piece.source}] {_piece_title(piece)}", file=out)
            print(f"      {one_line(piece.text)}", file=out)
        print(f"{len(pieces)} knowledge piece(s)", file=out)
        return ExitCode.OK

    return _with_memory(settings, search, out)


def _with_memory(settings: Settings, action: Any, out: TextIO) -> int:
    from .adapters.memory import AnswerMemoryError

    try:
        memory = open_answer_memory(settings)
    except AnswerMemoryError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    try:
        result: int = action(memory)
        return result
    except AnswerMemoryError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    finally:
        memory.close()


def memory_forget(settings: Settings, *, source: str, out: TextIO) -> int:
    """Every piece of one knowledge source out of the memory; verified answers stay."""

    def forget(memory: AnswerMemory) -> int:
        pieces = memory.pieces(source)
        for piece in pieces:
            memory.delete(piece.id)
        documents = {p.metadata.get("doc_id") for p in pieces}
        print(f"removed {len(pieces)} piece(s) of {len(documents)} {source}(s)", file=out)
        return ExitCode.OK

    return _with_memory(settings, forget, out)


def _list_pieces(memory: AnswerMemory, source: str, limit: int, out: TextIO) -> int:
    """The pieces of one knowledge source, by document and in order."""
    pieces = sorted(
        memory.pieces(source),
        key=lambda p: (p.metadata.get("doc_id", ""), int(p.metadata.get("index", "0") or 0)),
    )
    documents = {p.metadata.get("doc_id", "") for p in pieces}
    for piece in pieces[:limit]:
        metadata = piece.metadata
        where = piece_label(metadata.get("title"), metadata.get("heading"))
        number = f"{int(metadata.get('index', '0') or 0) + 1}/{metadata.get('count', '?')}"
        print(f"{piece.id}  [{source} {metadata.get('doc_id')}] {number}  {where}", file=out)
        if metadata.get("url"):
            print(f"  {metadata['url']}", file=out)
        print(f"  {one_line(metadata.get('text') or piece.text)}", file=out)
    print(f"{len(pieces)} piece(s) of {len(documents)} {source}(s) ({memory.backend})", file=out)
    return ExitCode.OK


def _piece_title(piece: KnowledgeHit) -> str:
    where = piece_label(piece.title, piece.heading)
    return f"{where} {piece.url}" if piece.url else where


def _piece_json(piece: KnowledgeHit) -> dict[str, Any]:
    return {
        "id": piece.id,
        "score": round(piece.score, 4),
        "source": piece.source,
        "doc_id": piece.doc_id,
        "title": piece.title,
        "heading": piece.heading,
        "url": piece.url,
        "text": piece.text,
    }


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
    from .adapters.files import StateFileError
    from .flow.sync import HistorySync, SyncProgress

    try:
        progress = SyncProgress(settings.state_file)
    except StateFileError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return ExitCode.STATE
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
    except IntercomResponderError as exc:  # Intercom, the memory, a breaker
        print(
            f"intercom-responder: sync stopped: {exc}. What was done is kept; run the same "
            "command again to continue.",
            file=sys.stderr,
        )
        return ExitCode.FAILED
    finally:
        if memory is not None:
            memory.close()
        progress.close()
    return ExitCode.INTERRUPTED if result.interrupted else ExitCode.OK


def knowledge_sync(
    settings: Settings, *, articles: bool, docs: Path | None, dry_run: bool, out: TextIO
) -> int:
    """`sync --articles` / `sync --docs PATH`: the knowledge sources into the memory."""
    from .adapters.documents import SkippedFile, read_documents
    from .adapters.files import StateFileError, lock_exclusively
    from .core.knowledge import ARTICLE, DOCUMENT, KnowledgeDocument
    from .flow.knowledge_sync import (
        KnowledgeSync,
        direct,
        knowledge_lock_path,
        published_articles,
    )

    try:
        lock = lock_exclusively(
            knowledge_lock_path(settings.state_file), "wait for the other import to finish"
        )
    except StateFileError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return ExitCode.STATE
    memory: AnswerMemory | None = None
    failed = interrupted = False
    try:
        memory = open_answer_memory(settings)
        syncing = KnowledgeSync(direct(memory), out=out, dry_run=dry_run)
        jobs: list[tuple[str, Callable[[], Iterable[KnowledgeDocument | SkippedFile]]]] = []
        if articles:
            intercom = build_intercom(settings)
            jobs.append((ARTICLE, lambda: published_articles(intercom)))
        if docs is not None:
            folder = docs
            jobs.append((DOCUMENT, lambda: read_documents(folder)))
        for source, documents in jobs:
            result = syncing.sync(source, documents())
            failed = failed or result.error is not None
            interrupted = interrupted or result.interrupted
            if result.interrupted:
                break
    except IntercomResponderError as exc:  # the memory, the folder
        print(f"intercom-responder: sync stopped: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    finally:
        if memory is not None:
            memory.close()
        lock.close()
    if interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.FAILED if failed else ExitCode.OK


def dlq_list(settings: Settings, *, out: TextIO) -> int:
    """Dead letters, read without locking so it works beside a running daemon."""
    from datetime import UTC, datetime

    from .adapters.files import StateFileError
    from .bootstrap import open_store

    try:
        store = open_store(settings, read_only=True)
    except StateFileError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return ExitCode.STATE
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
    return ExitCode.OK


def dlq_retry(settings: Settings, conversation_id: str | None, *, out: TextIO) -> int:
    """Back in the queue: directly, or through a request file when the daemon runs."""
    from .adapters.files import StateFileError, StateLockedError
    from .adapters.store import StateStore
    from .bootstrap import open_store
    from .flow.dead_letters import request_retry

    which = f"conversation {conversation_id}" if conversation_id else "all dead letters"
    try:
        # PostgreSQL is shared by design: a running daemon sees the change at its next poll
        store = (
            open_store(settings)
            if settings.state_backend == "postgres"
            else (StateStore(settings.state_file))
        )
    except StateLockedError:
        request_retry(settings.state_file, conversation_id)
        print(f"the running daemon will retry {which} at its next poll", file=out)
        return ExitCode.OK
    except StateFileError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return ExitCode.STATE
    try:
        retried = store.retry_dead_letters(conversation_id)
    finally:
        store.close()
    if not retried:
        print(f"no dead letter matched ({which})", file=sys.stderr)
        return ExitCode.FAILED
    print(f"back in the queue: {', '.join(retried)}", file=out)
    return ExitCode.OK


def playground(settings: Settings, *, host: str, port: int, learn: bool, out: TextIO) -> int:
    """Serve the playground until Ctrl-C or SIGTERM; off loopback only with PLAYGROUND_TOKEN."""
    from .adapters.web import WebStartError
    from .bootstrap import build_playground

    if not _loopback(host) and not settings.playground_token:
        print(
            f"intercom-responder: configuration error: PLAYGROUND_TOKEN: is required to serve "
            f"the playground on {host}, which is not a loopback address (anyone who reaches "
            "it could use your model key)",
            file=sys.stderr,
        )
        return ExitCode.CONFIG
    server = build_playground(
        settings, host=host, port=port, learn=learn, token=settings.playground_token
    )
    try:
        server.start()
    except WebStartError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    stopping = threading.Event()
    _install_signal_handlers(stopping)
    learning = "approved and edited answers are learned" if learn else "the memory is only read"
    print(f"playground on {server.url} ({learning}); Ctrl-C to stop", file=out, flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return ExitCode.OK


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def route(settings: Settings, text: str, *, out: TextIO) -> int:
    """`python main.py route "..."`: the team routing would choose; nothing is assigned."""
    from .bootstrap import build_router

    if not settings.openai_api_key:
        print(
            "intercom-responder: configuration error: OPENAI_API_KEY: is required for routing "
            "(the model picks the team)",
            file=sys.stderr,
        )
        return ExitCode.CONFIG
    router = build_router(settings, build_intercom(settings))
    teams = router.teams()
    taken = router.route([text.strip()], about="route")
    if taken.team_id:
        print(f"team:       {taken.team_name} (id {taken.team_id})", file=out)
    else:
        fallback = settings.handoff_team_id
        where = f"HANDOFF_TEAM_ID {fallback}" if fallback else "nobody (no HANDOFF_TEAM_ID)"
        print(f"team:       none: falls back to {where} ({taken.fallback})", file=out)
    print(f"confidence: {taken.confidence:.2f}", file=out)
    print(f"reason:     {taken.reason or '-'}", file=out)
    print(f"teams:      {', '.join(t.name for t in teams) or 'none found'}", file=out)
    return ExitCode.OK


def evaluate(
    settings: Settings,
    *,
    since: date | None,
    limit: int,
    out_dir: Path | None,
    questions: Path | None,
    judge_model: str | None,
    target: float,
    yes: bool,
    as_json: bool,
    out: TextIO,
) -> int:
    """`python main.py eval`: draft past questions as the daemon would, judge, report."""
    import tempfile
    from pathlib import Path

    from .adapters.memory import AnswerMemoryError
    from .adapters.recall import Recall
    from .bootstrap import build_chat_model
    from .core.evaluation import QuestionsFileError, parse_questions
    from .flow.evaluation import EvalCache, Evaluation, past_pairs, questions_pairs
    from .flow.sync import since_timestamp

    if not settings.openai_api_key:
        print(
            "intercom-responder: configuration error: OPENAI_API_KEY: is required for eval "
            "(the judge is an OpenAI-compatible model)",
            file=sys.stderr,
        )
        return ExitCode.CONFIG
    try:
        if questions is not None:
            pairs = questions_pairs(
                parse_questions(questions.read_text(encoding="utf-8-sig"), name=questions.name)
            )
        else:
            pairs = past_pairs(
                build_intercom(settings),
                settings.intercom_admin_id,
                since=since_timestamp(since),
                limit=limit,
            )
    except QuestionsFileError as exc:
        print(f"intercom-responder: {questions}: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    except OSError as exc:
        print(f"intercom-responder: {questions}: cannot be read: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    except IntercomResponderError as exc:
        print(f"intercom-responder: eval stopped: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    except KeyboardInterrupt:
        print(
            "intercom-responder: stopped while finding the pairs; nothing was done", file=sys.stderr
        )
        return ExitCode.INTERRUPTED
    if not pairs:
        where = (
            f"in {questions}"
            if questions
            else "in the conversations (a customer asked, a teammate answered)"
        )
        print(f"intercom-responder: no question-answer pairs found {where}", file=sys.stderr)
        return ExitCode.FAILED
    judge = build_chat_model(settings, model=judge_model)
    calls = (
        f"at most {2 * len(pairs)} model calls ({len(pairs)} drafts with {settings.openai_model}"
    )
    calls += f", {len(pairs)} judgements with {judge.model}); cached ones are free"
    print(f"eval: {len(pairs)} question-answer pairs, {calls}", file=sys.stderr)
    if not yes and sys.stdin.isatty():
        answer = input("Go on? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("nothing was done", file=sys.stderr)
            return ExitCode.OK
    with tempfile.TemporaryDirectory(prefix="intercom-responder-eval-") as scratch:
        memory: AnswerMemory | None = None
        recall: Recall | None = None
        if settings.memory_top_k > 0 and questions is None:
            try:
                memory = open_answer_memory(settings, local_dir=Path(scratch))
                _copy_knowledge(settings, memory)
            except AnswerMemoryError as exc:
                print(f"intercom-responder: eval goes on without memory: {exc}", file=sys.stderr)
                memory = None
            if memory is not None:
                opened = memory
                recall = Recall(lambda: opened, timeout=settings.memory_timeout)
        elif settings.memory_top_k > 0 and _team_memory_exists(settings):
            recall = build_recall(settings)  # a test set: the team's memory, only searched
        drafter = build_drafter(settings, None, recall)
        evaluation = Evaluation(
            drafter=drafter,
            judge=judge,
            memory=memory,
            fingerprint=[
                settings.responder,
                settings.openai_model,
                settings.confidence_threshold,
                settings.memory_top_k,
                settings.memory_min_score,
                settings.knowledge_top_k,
                settings.knowledge_min_score,
            ],
            cache=EvalCache(out_dir / "cache.jsonl" if out_dir else None),
            out=sys.stderr,
            is_tty=sys.stderr.isatty(),
        )
        try:
            run = evaluation.run(pairs)
        finally:
            if recall is not None:
                recall.close()
            elif memory is not None:
                memory.close()
    return _eval_report(settings, run, target=target, out_dir=out_dir, as_json=as_json, out=out)


def _team_memory_exists(settings: Settings) -> bool:
    """The platform, or a local memory already under DATA_DIR (opening one would create it)."""
    return bool(settings.mem0_api_key) or (settings.data_dir / "qdrant").exists()


def _copy_knowledge(settings: Settings, into: AnswerMemory) -> None:
    """The team's knowledge pieces into the eval's own memory (only read from the team's)."""
    from .adapters.memory import AnswerMemoryError
    from .core.knowledge import SOURCES

    if not _team_memory_exists(settings):
        return  # no local memory yet: nothing to copy, and nothing is created by looking
    try:
        team = open_answer_memory(settings)
    except AnswerMemoryError as exc:
        print(f"intercom-responder: knowledge pieces not used: {exc}", file=sys.stderr)
        return
    try:
        for source in SOURCES:
            for piece in team.pieces(source):
                into.add_piece(piece.text, dict(piece.metadata))
    finally:
        team.close()


def _eval_report(
    settings: Settings,
    run: Any,
    *,
    target: float,
    out_dir: Path | None,
    as_json: bool,
    out: TextIO,
) -> int:
    from .core.evaluation import calibration, summarize, worst_sent

    results = run.results
    summary = summarize(results, threshold=settings.confidence_threshold, target=target)
    buckets = calibration(results)
    worst = worst_sent(results)
    if out_dir is not None:
        from .adapters.eval_report import write_report

        for path in write_report(out_dir, summary, buckets, results, worst):
            print(f"wrote {path}", file=sys.stderr)
    if as_json:
        print(json.dumps(summary.to_json(), ensure_ascii=False), file=out)
    else:
        print(_eval_table(summary, buckets, worst, run), file=out)
    return ExitCode.INTERRUPTED if run.interrupted else ExitCode.OK


def _eval_table(summary: Any, buckets: Any, worst: Any, run: Any) -> str:
    def share(count: int, part: float) -> str:
        return f"{count:>4} ({part * 100:.0f} %)"

    def mean(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    rules = sorted(summary.by_rule.items(), key=lambda item: (-item[1], item[0]))
    lines = [
        ("eval interrupted" if run.interrupted else "eval")
        + f": {summary.pairs} pairs ({summary.failed} failed), CONFIDENCE_THRESHOLD "
        f"{summary.threshold:.2f}, target agreement {summary.target:.2f}",
        f"  sent alone: {share(summary.sent, summary.sent_share)}   mean agreement "
        f"{mean(summary.mean_agreement_sent)}, word overlap {mean(summary.mean_similarity_sent)}",
        f"  reviewed:   {share(summary.reviewed, summary.reviewed_share)}",
        f"  handed off: {share(summary.handed_off, summary.handed_off_share)}",
        "  by rule:    " + (", ".join(f"{rule} {n}" for rule, n in rules) or "-"),
    ]
    if summary.lowest_threshold is None:
        lines.append(f"  no threshold reaches a mean agreement of {summary.target:.2f}")
    else:
        lines.append(
            f"  lowest threshold reaching {summary.target:.2f}: {summary.lowest_threshold:.2f} "
            f"({summary.sent_at_lowest} would be sent)"
        )
    if run.cached_drafts or run.cached_judgements:
        lines.append(
            f"  from the cache: {run.cached_drafts} drafts, {run.cached_judgements} judgements"
        )
    lines.append("calibration (confidence: pairs, mean agreement)")
    for bucket in buckets:
        span = f"{bucket.low:.1f}-{bucket.high:.1f}"
        lines.append(f"  {span}  {bucket.count:>4}  {mean(bucket.mean_agreement)}")
    if worst:
        lines.append(f"the {len(worst)} worst would-be-sent answers")
    for number, result in enumerate(worst, 1):
        where = f"conversation {result.conversation_id}" if result.conversation_id else "question"
        lines.append(
            f"  {number}. agreement {mean(result.agreement)}, confidence "
            f"{result.confidence:.2f} ({where}): {one_line(result.judge_reason, 160)}"
        )
        lines.append(f"     Q:        {one_line(result.question, 160)}")
        lines.append(f"     AI:       {one_line(result.draft, 160)}")
        lines.append(f"     teammate: {one_line(result.expected, 160)}")
    return "\n".join(lines)


def state_export(settings: Settings, *, to: Path | None, out: TextIO) -> int:
    """`state export`: the whole state (cursor, conversations, sessions, reviews, dead
    letters, tickets) as one JSON document in the state file's format."""
    from .adapters.files import StateFileError
    from .bootstrap import open_store

    try:
        store = open_store(settings, read_only=True)
    except StateFileError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return ExitCode.STATE
    try:
        document = store.snapshot()
    finally:
        store.close()
    text = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True)
    if to is None:
        print(text, file=out)
    else:
        from .adapters.files import write_atomically

        write_atomically(to, document)
        print(
            f"exported {len(document.get('conversations') or {})} conversation(s) to {to}", file=out
        )
    return ExitCode.OK


def state_import(settings: Settings, source: Path, *, replace: bool, out: TextIO) -> int:
    """`state import FILE`: into the configured backend; a non-empty one only with --replace.

    Run it with the daemon stopped (the file store refuses while a daemon holds it);
    the records keep their states, so nothing is answered twice after the switch.
    """
    from .adapters.files import StateFileError, read_json
    from .adapters.store import parse_state_document
    from .bootstrap import open_store

    try:
        document = read_json(source, "state export")
        if document is None:
            raise StateFileError(f"{source}: no such file")
        conversations, tickets, cursors = parse_state_document(document)
    except StateFileError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return ExitCode.STATE
    except (TypeError, ValueError) as exc:
        print(f"intercom-responder: {source}: not a state export ({exc})", file=sys.stderr)
        return ExitCode.STATE
    try:
        store = open_store(settings)
    except StateFileError as exc:
        print(f"intercom-responder: {exc}", file=sys.stderr)
        return ExitCode.STATE
    try:
        if not store.is_empty() and not replace:
            print(
                f"intercom-responder: {store_name(settings)} is not empty; nothing was imported "
                "(--replace replaces everything in it)",
                file=sys.stderr,
            )
            return ExitCode.FAILED
        store.restore(conversations, tickets, cursors)
    finally:
        store.close()
    print(
        f"imported {len(conversations)} conversation(s) and {len(tickets)} ticket(s) into "
        f"{store_name(settings)}",
        file=out,
    )
    return ExitCode.OK


def store_name(settings: Settings) -> str:
    if settings.state_backend == "postgres" and settings.database_url:
        from .adapters.pg_store import shown_url

        return f"the database {shown_url(settings.database_url)}"
    return f"the state file {settings.state_file}"
