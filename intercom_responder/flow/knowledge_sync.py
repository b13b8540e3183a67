"""`sync --articles` and `sync --docs`: the team's own documentation in the answer memory.

Each run compares what the source has now with what the memory holds and changes only
the difference (`core.knowledge.plan_document`): so a second run changes nothing, an
edited document is replaced, a removed one is removed, and a run stopped anywhere
(Ctrl-C, SIGKILL) is finished by the next one, which ends with the memory one
uninterrupted run leaves. Nothing is removed for documents missing from the source
unless the source was read completely.

Every memory call goes through `run` (the memory itself for the command line, the
daemon's `Recall` worker for the daemon's own article imports), so the daemon's drafts
keep their memory searches while an import runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO, TypeVar

from ..adapters.documents import SkippedFile
from ..adapters.files import StateFileError, lock_exclusively
from ..adapters.intercom import IntercomClient
from ..core.knowledge import (
    ARTICLE,
    DocumentPlan,
    KnowledgeDocument,
    article_document,
    group_by_document,
    plan_document,
)
from ..core.text import one_line
from ..defaults import ARTICLES_SYNC_FIRST_DELAY_SECONDS, SYNC_PROGRESS_EVERY_SECONDS
from ..errors import IntercomResponderError
from .locks import Claims

if TYPE_CHECKING:
    from ..adapters.memory import AnswerMemory

log = logging.getLogger(__name__)

T = TypeVar("T")


class MemoryRunner(Protocol):
    def __call__(self, operation: Callable[[AnswerMemory], T]) -> T: ...


@dataclass
class KnowledgeSyncResult:
    source: str
    documents: int = 0  # read from the source and usable
    statuses: Counter[str] = field(default_factory=Counter)  # added, replaced, unchanged, removed
    pieces_added: int = 0
    pieces_removed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    interrupted: bool = False
    complete: bool = True  # the source was read to its end (removals were done)
    seconds: float = 0.0
    dry_run: bool = False
    error: str | None = None  # what stopped it (Intercom, the memory, the folder)

    def summary(self) -> str:
        noun = "articles" if self.source == ARTICLE else "documents"
        verb = "would change" if self.dry_run else "changed"
        state = "failed" if self.error else "interrupted" if self.interrupted else "done"
        counts = ", ".join(
            f"{self.statuses[s]} {s}" for s in ("added", "replaced", "removed", "unchanged")
        )
        lines = [
            f"{self.source} sync {state}: {self.documents} {noun} ({counts}); {verb} "
            f"+{self.pieces_added} / -{self.pieces_removed} pieces, skipped "
            f"{len(self.skipped)} ({self.seconds:.1f} s)"
        ]
        reasons = Counter(why for _, why in self.skipped)
        if self.source == ARTICLE:
            lines += [f"  skipped {n}: {why}" for why, n in sorted(reasons.items())]
        else:
            lines += [f"  skipped {what}: {why}" for what, why in self.skipped]
        if self.error:
            lines.append(f"  stopped by an error: {self.error}")
        if self.interrupted or self.error:
            lines.append("  run the same command again to finish it")
        elif not self.complete:
            lines.append("  the source could not be read to its end: nothing was removed")
        return "\n".join(lines)


class KnowledgeSync:
    def __init__(
        self,
        run: MemoryRunner,
        *,
        out: TextIO | None = None,
        is_tty: bool | None = None,
        dry_run: bool = False,
        stopping: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run = run
        self._out = out
        self._tty = bool(out is not None and (out.isatty() if is_tty is None else is_tty))
        self._dry_run = dry_run
        self._stopping = stopping or threading.Event()
        self._clock = clock
        self._last_plain = 0.0
        self._total = 0  # documents of the source being synced (for the progress bar)

    def sync(
        self, source: str, documents: Iterable[KnowledgeDocument | SkippedFile]
    ) -> KnowledgeSyncResult:
        """Bring the memory's pieces of `source` in line with `documents`.

        The source is read to its end first (so the progress bar knows the total, and a
        source that fails halfway changes nothing), then changed document by document.
        """
        result = KnowledgeSyncResult(source, dry_run=self._dry_run)
        started = self._clock()
        stored = group_by_document(self._run(lambda memory: memory.pieces(source)))
        seen: set[str] = set()
        try:
            wanted: list[KnowledgeDocument] = []
            for item in documents:
                if isinstance(item, SkippedFile):
                    result.skipped.append((item.path, item.reason))
                else:
                    wanted.append(item)
            self._total = len(wanted)
            for item in wanted:
                if self._stopping.is_set():
                    result.interrupted = True
                    break
                seen.add(item.doc_id)
                result.documents += 1
                self._apply(plan_document(item, stored.get(item.doc_id, [])), result)
                result.seconds = self._clock() - started
                self._show(result)
            else:
                for doc_id in sorted(set(stored) - seen):
                    plan = DocumentPlan(doc_id, "removed", remove=[p.id for p in stored[doc_id]])
                    self._apply(plan, result)
        except KeyboardInterrupt:
            result.interrupted = True
        except IntercomResponderError as exc:  # the pieces stored so far stay: the next run goes on
            result.error = one_line(exc, 300)
        result.complete = not result.interrupted and result.error is None
        result.seconds = self._clock() - started
        if self._out is not None:
            if self._tty:
                self._out.write("\n")
            print(result.summary(), file=self._out, flush=True)
        log.info("%s", result.summary().splitlines()[0])
        return result

    def _apply(self, plan: DocumentPlan, result: KnowledgeSyncResult) -> None:
        """Add the new pieces first, then remove the old: never a moment without the document."""
        result.statuses[plan.status] += 1
        if plan.status != "unchanged":
            log.debug("%s %s: %s", result.source, plan.doc_id, plan.status)
        if self._dry_run:
            result.pieces_added += len(plan.add)
            result.pieces_removed += len(plan.remove)
            return
        for text, metadata in plan.add:
            self._run(_adding(text, metadata))
            result.pieces_added += 1
        for memory_id in plan.remove:
            self._run(_deleting(memory_id))
            result.pieces_removed += 1

    def _show(self, result: KnowledgeSyncResult) -> None:
        if self._out is None:
            return
        status = (
            f"{result.documents}/{self._total} {result.source}s, +{result.pieces_added} / "
            f"-{result.pieces_removed} pieces, {len(result.skipped)} skipped"
        )
        if self._tty:
            width = 24
            filled = width * result.documents // self._total if self._total else width
            self._out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {status} ")
            self._out.flush()
            return
        now = self._clock()
        if now - self._last_plain >= SYNC_PROGRESS_EVERY_SECONDS:
            self._last_plain = now
            print(status, file=self._out, flush=True)


def knowledge_lock_path(state_file: Path) -> Path:
    """One knowledge import at a time (the command line's or the daemon's own)."""
    state_file = Path(state_file)
    return state_file.with_name(f"{state_file.stem}.knowledge")


#: The claim an importing replica holds (no conversation id starts with "~").
ARTICLES_CLAIM = "~articles"


class ArticleImports:
    """The daemon's own `sync --articles`, every ARTICLES_SYNC_HOURS, in a thread of its own.

    The first run comes a minute after the start (not in the middle of the first poll's
    drafts); one that finds another import running (the lock, and with replicas on one
    database the claim `~articles` there) waits for the next turn.
    A failed run is logged and tried again at the next turn: a help center that cannot
    be read never stops the answers.
    """

    def __init__(
        self,
        *,
        intercom: IntercomClient,
        run: MemoryRunner,
        state_file: Path,
        every_seconds: float,
        stopping: threading.Event,
        first_delay: float = ARTICLES_SYNC_FIRST_DELAY_SECONDS,
        claims: Claims | None = None,
    ) -> None:
        # replicas share one Mem0 platform but not DATA_DIR: the file lock alone would
        # let two of them import at once, and add the same pieces twice
        self._claims = claims
        self._intercom = intercom
        self._run = run
        self._lock_path = knowledge_lock_path(state_file)
        self._every = every_seconds
        self._first_delay = first_delay
        self._stopping = stopping  # the daemon is stopping: no new import
        self._halt = threading.Event()  # stop(): also when the daemon's event is never set
        self._thread: threading.Thread | None = None
        self.runs = 0  # finished runs (for tests and the log)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="article-imports", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> KnowledgeSyncResult | None:
        """One import now; None when another one holds the lock."""
        try:
            lock = lock_exclusively(self._lock_path, "another import runs")
        except StateFileError as exc:
            log.info("article import skipped this turn: %s", exc)
            return None
        try:
            if self._claims is not None and not self._claims.claim(ARTICLES_CLAIM):
                log.info("article import skipped this turn: another replica imports")
                return None
            try:
                syncing = KnowledgeSync(self._run, stopping=self._halt)
                return syncing.sync(ARTICLE, published_articles(self._intercom))
            finally:
                if self._claims is not None:
                    self._claims.release(ARTICLES_CLAIM)
        finally:
            lock.close()
            self.runs += 1

    def _loop(self) -> None:
        wait = self._first_delay
        while not self._halt.wait(wait) and not self._stopping.is_set():
            try:
                self.run_once()
            except Exception:  # the memory, Intercom: the next turn tries again
                log.exception("article import failed; trying again in %g h", self._every / 3600)
            wait = self._every


def _adding(text: str, metadata: dict[str, str]) -> Callable[[AnswerMemory], None]:
    return lambda memory: memory.add_piece(text, metadata)


def _deleting(memory_id: str) -> Callable[[AnswerMemory], None]:
    return lambda memory: memory.delete(memory_id)


def published_articles(intercom: IntercomClient) -> Iterable[KnowledgeDocument | SkippedFile]:
    """Every article of the help center, as a document or as the reason it is not used."""
    for data in intercom.list_articles():
        document = article_document(data)
        if isinstance(document, str):
            yield SkippedFile(f"article {data.get('id')}", document)
        else:
            yield document


def direct(memory: AnswerMemory) -> MemoryRunner:
    """Run memory operations on `memory` itself (the command line owns it)."""

    def run(operation: Callable[[AnswerMemory], Any]) -> Any:
        return operation(memory)

    return run
