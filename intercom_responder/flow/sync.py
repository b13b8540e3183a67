"""`python main.py sync`: teach the catalogue what teammates already answered.

The conversation ids are listed once (one search, followed page by page) and kept in
the sync progress file with the position, which is saved after every conversation:
Ctrl-C or a crash, then the same command again, continues where it stopped. Adding is
idempotent (the memory never stores the same pair twice), so the end result is the
same as one uninterrupted run. Conversations that vanished (404) or carry nothing
usable are skipped and counted, never fatal.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..adapters.files import StateFileError, lock_exclusively, read_json, write_atomically
from ..adapters.intercom import IntercomClient, IntercomError
from ..core.conversation import Conversation, ConversationFormatError
from ..core.history import QAPair, qa_pairs
from ..core.text import one_line
from ..defaults import SYNC_PROGRESS_EVERY_SECONDS

if TYPE_CHECKING:
    from ..adapters.memory import AnswerMemory

log = logging.getLogger(__name__)


#: Format of the sync progress file.
PROGRESS_VERSION = 1


@dataclass
class SyncJob:
    """One history sync: which conversations, and how far it got."""

    since: int | None
    limit: int | None
    conversation_ids: list[str]
    position: int = 0
    finished: bool = False
    started_at: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


class SyncProgress:
    """The sync's position, beside the state file (`sessions.sync.json`), locked like it.

    Separate from the daemon's state file so that `sync` can run while the daemon runs;
    written after every conversation, so Ctrl-C or a crash loses at most one.
    """

    def __init__(self, state_file: Path) -> None:
        state_file = Path(state_file)
        self.path = state_file.with_name(f"{state_file.stem}.sync.json")
        self._lock_file: TextIO | None = lock_exclusively(
            self.path, "wait for the other sync to finish"
        )
        try:
            self.job = self._load()
        except StateFileError:
            self.close()
            raise

    def _load(self) -> SyncJob | None:
        document = read_json(self.path, "sync progress file")
        if document is None:
            return None
        try:
            job = document["job"]
            return SyncJob(
                since=job["since"],
                limit=job["limit"],
                conversation_ids=[str(i) for i in job["conversation_ids"]],
                position=int(job["position"]),
                finished=bool(job["finished"]),
                started_at=float(job.get("started_at") or 0.0),
                counts={str(k): int(v) for k, v in (job.get("counts") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateFileError(
                f"{self.path}: the sync progress file has an unexpected shape ({exc}); "
                "move it away to start the sync anew"
            ) from exc

    def save(self, job: SyncJob) -> None:
        self.job = job
        write_atomically(self.path, {"version": PROGRESS_VERSION, "job": asdict(job)})

    def close(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> SyncProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass
class SyncResult:
    total: int = 0
    done: int = 0
    pairs_added: int = 0
    pairs_known: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    cut: int = 0
    resumed_at: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    would_add: list[QAPair] = field(default_factory=list)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def since_timestamp(since: date | None) -> int | None:
    if since is None:
        return None
    return int(datetime(since.year, since.month, since.day, tzinfo=UTC).timestamp())


class HistorySync:
    def __init__(
        self,
        *,
        intercom: IntercomClient,
        memory: AnswerMemory | None,
        progress: SyncProgress,
        admin_id: str,
        out: TextIO = sys.stdout,
        is_tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._intercom = intercom
        self._memory = memory  # None: dry run, nothing is written
        self._progress = progress
        self._admin_id = admin_id
        self._out = out
        self._tty = out.isatty() if is_tty is None else is_tty
        self._clock = clock
        self._last_plain = 0.0

    def run(self, *, since: date | None = None, limit: int | None = None) -> SyncResult:
        since_ts = since_timestamp(since)
        job = self._progress.job
        resuming = (
            job is not None
            and not job.finished
            and job.since == since_ts
            and job.limit == limit
            and self._memory is not None
        )
        if not resuming or job is None:
            job = SyncJob(
                since=since_ts,
                limit=limit,
                conversation_ids=self._list(since_ts, limit),
                started_at=time.time(),
            )
            if self._memory is not None:
                self._progress.save(job)
        result = SyncResult(total=len(job.conversation_ids), resumed_at=job.position)
        result.done = job.position
        counts = Counter(job.counts)
        result.pairs_added = counts["added"]
        result.pairs_known = counts["known"]
        result.cut = counts["cut"]
        result.skipped = Counter(
            {k.removeprefix("skipped:"): v for k, v in counts.items() if k.startswith("skipped:")}
        )
        if resuming:
            self._line(f"resuming a sync at conversation {job.position + 1} of {result.total}")
        started = self._clock()
        try:
            for position in range(job.position, len(job.conversation_ids)):
                self._one(job.conversation_ids[position], result)
                result.done = position + 1
                if self._memory is not None:
                    job.position = position + 1
                    job.counts = _counts(result)
                    self._progress.save(job)
                result.seconds = self._clock() - started
                self._show(result)
        except KeyboardInterrupt:
            result.interrupted = True
        result.seconds = self._clock() - started
        if self._memory is not None and not result.interrupted:
            job.finished = True
            self._progress.save(job)
        self._summary(result)
        return result

    def _list(self, since_ts: int | None, limit: int | None) -> list[str]:
        """Every conversation, open or closed, updated after `since`; oldest first."""
        query = {"field": "updated_at", "operator": ">", "value": max((since_ts or 1) - 1, 0)}
        found: dict[str, int] = {}
        for summary in self._intercom.search_conversations(query):
            conversation_id = str(summary.get("id") or "")
            if conversation_id:
                found[conversation_id] = _int(summary.get("created_at"))
        ordered = sorted(found, key=lambda cid: (found[cid], _numeric(cid)))
        return ordered[:limit] if limit is not None else ordered

    def _one(self, conversation_id: str, result: SyncResult) -> None:
        try:
            conversation = Conversation.from_api(self._intercom.get_conversation(conversation_id))
        except IntercomError as exc:
            if exc.status == 404:
                result.skipped["conversation vanished (404)"] += 1
                return
            raise
        except ConversationFormatError as exc:
            log.warning("conversation %s: skipped, unreadable: %s", conversation_id, exc)
            result.skipped["unreadable conversation"] += 1
            return
        extraction = qa_pairs(conversation, self._admin_id)
        result.skipped.update(extraction.skipped)
        result.cut += extraction.cut
        for pair in extraction.pairs:
            if self._memory is None:
                result.would_add.append(pair)
                continue
            added = self._memory.add(
                pair.question,
                pair.answer,
                source="sync",
                conversation_id=pair.conversation_id,
                extra={
                    "question_part_ids": ",".join(pair.question_part_ids),
                    "answer_part_ids": ",".join(pair.answer_part_ids),
                    "answered_at": str(pair.answered_at),
                },
            )
            if added:
                result.pairs_added += 1
            else:
                result.pairs_known += 1

    # --- output -------------------------------------------------------------------

    def _show(self, result: SyncResult) -> None:
        if self._tty:
            self._out.write("\r" + _bar(result) + " ")
            self._out.flush()
            return
        now = self._clock()
        if result.done == result.total or now - self._last_plain >= SYNC_PROGRESS_EVERY_SECONDS:
            self._last_plain = now
            self._line(_status(result))

    def _summary(self, result: SyncResult) -> None:
        if self._tty:
            self._out.write("\n")
        verb = "would add" if self._memory is None else "added"
        pairs = len(result.would_add) if self._memory is None else result.pairs_added
        lines = [
            ("sync interrupted" if result.interrupted else "sync done")
            + f": {result.done} of {result.total} conversations, {verb} {pairs} pairs"
            + (f", {result.pairs_known} already known" if self._memory is not None else "")
            + f", skipped {result.skipped_total}"
            + (f", cut {result.cut} long texts" if result.cut else "")
            + f" ({result.seconds:.1f} s)"
        ]
        lines += [f"  skipped {n}: {reason}" for reason, n in sorted(result.skipped.items())]
        if result.interrupted:
            lines.append("  run the same command again to continue where it stopped")
        for pair in result.would_add:
            lines.append(f"- conversation {pair.conversation_id}:")
            lines.append(f"    Q: {one_line(pair.question, 140)}")
            lines.append(f"    A: {one_line(pair.answer, 140)}")
        self._line("\n".join(lines))

    def _line(self, text: str) -> None:
        print(text, file=self._out, flush=True)


def _status(result: SyncResult) -> str:
    rate = (result.done - result.resumed_at) / result.seconds if result.seconds > 0 else 0.0
    left = result.total - result.done
    eta = f"{left / rate:.0f} s" if rate > 0 else "?"
    return (
        f"{result.done}/{result.total} conversations, {result.pairs_added} pairs added, "
        f"{result.pairs_known} known, {result.skipped_total} skipped, "
        f"{rate:.1f}/s, ETA {eta}"
    )


def _bar(result: SyncResult, width: int = 24) -> str:
    filled = width * result.done // result.total if result.total else width
    return f"[{'#' * filled}{'.' * (width - filled)}] {_status(result)}"


def _counts(result: SyncResult) -> dict[str, int]:
    counts = {"added": result.pairs_added, "known": result.pairs_known, "cut": result.cut}
    counts.update({f"skipped:{reason}": n for reason, n in result.skipped.items()})
    return counts


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return 0


def _numeric(conversation_id: str) -> int:
    return int(conversation_id) if conversation_id.isdigit() else 0
