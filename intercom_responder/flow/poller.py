"""The poll loop: find conversations that need the daemon, hand them to the pipeline.

An idle poll costs one search call however many conversations are open: the search
asks only for what changed since the saved cursor, and a result whose summary shows
nobody waiting (or that we already read at this `updated_at`) is not fetched.
Conversations waiting out a debounce or a retry are remembered in the state store and
read again when due, even if nothing else changes in them.

Replicas on one database share the poll: the one holding the poll lease searches, lists
what it found (`Findings`), and every replica handles its share of the list.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..adapters.files import StateFileError
from ..adapters.intercom import IntercomClient
from ..adapters.store import Store
from ..core.records import PARKABLE_STATES, ConversationRecord, State
from ..core.triage import Rules, skip_from_summary
from ..defaults import (
    FOLLOWER_POLL_SECONDS,
    OVERLAP_SECONDS,
    POLL_INTERVAL,
    SESSION_TTL_HOURS,
    STATE_RETRY_SECONDS,
)
from ..errors import IntercomResponderError
from .outcome import CLAIMED_ELSEWHERE, Outcome, Status
from .pipeline import Pipeline

if TYPE_CHECKING:
    from ..adapters.health import Health
    from ..adapters.metrics import Metrics

log = logging.getLogger(__name__)


class Findings(Protocol):
    """What the polling replica found, listed for every replica (`PostgresFound`)."""

    def share(self, conversation_ids: Sequence[str]) -> None: ...
    def listed(self) -> dict[str, float]: ...
    def found_at(self, conversation_id: str) -> float | None: ...
    def handled(self, conversation_id: str, found_at: float) -> None: ...


@dataclass
class CycleResult:
    ok: bool
    found: int = 0
    read: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    error: str | None = None
    completed: bool = True  # the search went through and every conversation was recorded
    intercom_calls: int = 0
    seconds: float = 0.0
    swept: bool = False  # this cycle also ran the sweep
    leading: bool = True  # this replica searched (always, without replicas)
    store_failed: bool = False  # the state store (a database) did not answer

    def counts(self) -> Counter[str]:
        return Counter(outcome.status for outcome in self.outcomes)


class Poller:
    def __init__(
        self,
        *,
        intercom: IntercomClient,
        pipeline: Pipeline,
        store: Store,
        rules: Rules,
        concurrency: int = 4,
        session_ttl_seconds: float = SESSION_TTL_HOURS * 3600,
        clock: Callable[[], float] = time.time,
        stopping: threading.Event | None = None,
        maintenance: Sequence[Callable[[], object]] = (),
        metrics: Metrics | None = None,
        health: Health | None = None,
        interval: float = POLL_INTERVAL,
        interval_min: float | None = None,
        interval_max: float | None = None,
        sweep_interval: float = 0.0,
        leader: Callable[[], bool] | None = None,
        findings: Findings | None = None,
    ) -> None:
        # Replicas on one database: only the one holding the poll lease searches Intercom
        # (so N replicas cost one replica's searches); all of them handle what it found.
        self._leader = leader
        self._findings = findings
        self._sweep_interval = sweep_interval
        # The first sweep comes SWEEP_INTERVAL after the start (a restart does not make a
        # burst of reads); without a sweep cursor it starts where polling stood at start.
        self._last_sweep = clock()
        self._sweep_start = store.cursor
        self._maintenance = tuple(maintenance)
        self._metrics = metrics
        self._health = health
        self.interval = interval
        self._interval_base = interval
        self._store_failures = 0  # polls in a row the state store failed
        self._interval_min = interval if interval_min is None else interval_min
        self._interval_max = interval if interval_max is None else interval_max
        self._intercom = intercom
        self._pipeline = pipeline
        self._store = store
        self._rules = rules
        self._concurrency = concurrency
        self._session_ttl = session_ttl_seconds
        self._clock = clock
        self.stopping = stopping or threading.Event()
        self._running = threading.Lock()

    def search_query(self, now: float) -> dict[str, Any]:
        """Open conversations a customer waits in, changed since the cursor."""
        return {
            "operator": "AND",
            "value": [
                *self._since_filters(self._store.cursor, now),
                # null when our side spoke last: conversations we (or a teammate) just
                # answered drop out of the results, so a burst of replies is not paged
                # through again by the idle polls after it
                {"field": "waiting_since", "operator": ">", "value": 0},
            ],
        }

    def sweep_query(self, now: float) -> dict[str, Any]:
        """The same without `waiting_since`, which Intercom does not promise is always set."""
        cursor = self._store.sweep_cursor
        if cursor is None:
            cursor = self._sweep_start
        return {"operator": "AND", "value": self._since_filters(cursor, now)}

    def _since_filters(self, cursor: int | None, now: float) -> list[dict[str, Any]]:
        since = int(now - self._rules.max_message_age_seconds) if cursor is None else cursor
        if cursor is not None:
            since -= OVERLAP_SECONDS
        return [
            {"field": "updated_at", "operator": ">", "value": since},
            {"field": "state", "operator": "=", "value": "open"},
        ]

    def poll_once(self, *, sweep: bool | None = None) -> CycleResult:
        """One cycle. A cycle still running when the next is due is not doubled.

        `sweep`: None sweeps when SWEEP_INTERVAL has passed, True sweeps now, False not.
        """
        if not self._running.acquire(blocking=False):
            log.warning("previous poll still running; skipping this one")
            return CycleResult(ok=True, error="previous poll still running")
        started = time.monotonic()
        calls_before = self._intercom.calls
        try:
            result = self._poll(self._sweep_due() if sweep is None else sweep)
        except StateFileError as exc:  # the state store is gone (a database down): report it
            result = CycleResult(
                ok=False, completed=False, error=f"the state store failed: {exc}", store_failed=True
            )
        finally:
            self._running.release()
        result.intercom_calls = self._intercom.calls - calls_before
        result.seconds = time.monotonic() - started
        self._observe(result)
        counts = result.counts()
        summary = (
            ", ".join(f"{status} {n}" for status, n in sorted(counts.items())) or "nothing to do"
        )
        log.log(
            logging.INFO if result.ok else logging.WARNING,
            "poll %s%s: %d changed, %d read: %s (%d Intercom calls, %.1f s)%s",
            "done" if result.ok else "failed",
            " with a sweep" if result.swept else "",
            result.found,
            result.read,
            summary,
            result.intercom_calls,
            result.seconds,
            f" - {result.error}" if result.error else "",
            extra={"event": "poll", "reason": result.error or ""},
        )
        return result

    def _poll(self, sweep: bool) -> CycleResult:
        now = self._clock()
        candidates: dict[str, None] = {}
        found: set[str] = set()
        cursor = self._store.cursor
        leading = self._leader is None or self._leader()
        newest_seen: int | None = None
        search_error: str | None = None
        if leading:
            newest_seen, search_error = self._scan(
                self.search_query(now), cursor, now, found, candidates, trust_waiting_since=True
            )
        sweep = sweep and leading
        swept_to: int | None = None
        if sweep:
            swept_to, sweep_error = self._scan(
                self.sweep_query(now),
                self._store.sweep_cursor,
                now,
                found,
                candidates,
                trust_waiting_since=False,
            )
            search_error = search_error or sweep_error
        listed: dict[str, float] = {}
        if self._findings is not None:
            if leading:  # listed before handled: if this replica dies, the others go on
                self._findings.share(list(candidates))
            listed = self._findings.listed()
            # replicas that went through one list in one order would follow each other
            theirs = [cid for cid in listed if cid not in candidates]
            random.shuffle(theirs)
            candidates.update(dict.fromkeys(theirs))
        for record in self._store.due(now):
            candidates.setdefault(record.conversation_id, None)

        outcomes, crashed = self._handle_all(list(candidates), listed)
        ok = search_error is None and not crashed
        # Stopping mid-cycle may leave found conversations unstarted and unrecorded: the
        # cursor stays, so the next start finds them again.
        # The cursor follows Intercom's own clock (the newest updated_at seen), never
        # ours: a conversation that reaches the search index late is still found.
        if ok and not self.stopping.is_set():
            if newest_seen and newest_seen != cursor:
                self._store.set_cursor(newest_seen)
            if sweep:
                self._last_sweep = now
                if swept_to:
                    self._store.set_sweep_cursor(swept_to)
        if leading:  # the leader prunes and runs the maintenance for all replicas
            self._store.prune(self._session_ttl)
            for task in self._maintenance:
                try:
                    task()
                except Exception:  # e.g. review expiry; the next cycle tries again
                    log.exception("maintenance task %s failed", getattr(task, "__name__", task))
        failed = [o for o in outcomes if o.status is Status.FAILED]
        error = search_error or (f"{len(crashed)} conversation(s) crashed" if crashed else None)
        if failed and error is None:
            error = f"{len(failed)} conversation(s) failed and will be retried"
        return CycleResult(
            ok=ok and not failed,
            found=len(found),
            read=len(outcomes),
            outcomes=outcomes,
            error=error,
            completed=ok,
            swept=sweep,
            leading=leading,
            store_failed=any(isinstance(exc, StateFileError) for exc in crashed.values()),
        )

    def _scan(
        self,
        query: dict[str, Any],
        cursor: int | None,
        now: float,
        found: set[str],
        candidates: dict[str, None],
        *,
        trust_waiting_since: bool,
    ) -> tuple[int, str | None]:
        """Walk one search: (newest updated_at seen, the error if the search failed).

        Results already found by an earlier search of this cycle are not looked at again.
        """
        newest_seen = cursor or 0
        try:
            for summary in self._intercom.search_conversations(query):
                conversation_id = str(summary.get("id") or "")
                if not conversation_id or conversation_id in found:
                    continue
                found.add(conversation_id)
                updated_at = _int(summary.get("updated_at"))
                newest_seen = max(newest_seen, updated_at)
                record = self._store.get(conversation_id)
                skip = skip_from_summary(
                    summary,
                    record.seen_updated_at if record else None,
                    record.seen_at if record else None,
                    self._rules,
                    now,
                    trust_waiting_since=trust_waiting_since,
                )
                if skip is not None:
                    continue
                if self._park_until_debounced(conversation_id, record, updated_at, now):
                    continue
                candidates[conversation_id] = None
        except IntercomResponderError as exc:  # Intercom failing, or its breaker open
            error = f"{'sweep' if not trust_waiting_since else 'search'} failed: {exc}"
            log.error("%s", error)
            return newest_seen, error
        return newest_seen, None

    def _sweep_due(self) -> bool:
        return self._sweep_interval > 0 and self._clock() - self._last_sweep >= self._sweep_interval

    def _observe(self, result: CycleResult) -> None:
        if self._health is not None:
            self._health.poll_finished(
                result.completed,
                result.error,
                leading=result.leading if self._leader is not None else None,
            )
        if self._metrics is None:
            return
        self._metrics.polls.inc()
        if result.swept:
            self._metrics.sweeps.inc()
        if not result.completed:
            self._metrics.poll_failures.inc()
        self._metrics.conversations_seen.inc(result.read)
        try:
            oldest = self._store.oldest_waiting()
        except StateFileError:  # the store is down: the poll said so already
            pass
        else:
            self._metrics.oldest_waiting.set(max(self._clock() - oldest, 0) if oldest else 0)
        self._metrics.poll_interval.set(self.interval)

    def next_interval(self, result: CycleResult) -> float:
        """Shorter while customers are writing, longer while nothing happens; a replica
        that does not lead looks often, which costs no Intercom call. While the state
        store (a database) fails, it is tried again soon, then less often (5 s doubling
        up to POLL_INTERVAL), so the daemon is back soon after it."""
        if result.store_failed:
            self._store_failures += 1
            backoff = STATE_RETRY_SECONDS * 2.0 ** min(self._store_failures - 1, 16)
            return min(backoff, max(self._interval_base, STATE_RETRY_SECONDS))
        self._store_failures = 0
        if not result.leading:
            return min(FOLLOWER_POLL_SECONDS, self._interval_min)
        # Re-seen search results (the overlap) are not activity; reading one that needed
        # work is.
        busy = any(o.status != Status.SKIPPED for o in result.outcomes)
        if busy:
            return max(self._interval_min, self.interval / 2)
        return min(self._interval_max, self.interval * 1.5)

    def _park_until_debounced(
        self,
        conversation_id: str,
        record: ConversationRecord | None,
        updated_at: int,
        now: float,
    ) -> bool:
        """Changed less than DEBOUNCE_SECONDS ago: come back then, without reading it now.

        `updated_at` is at least as new as the newest customer message, so reading the
        conversation now could only find a message still inside its debounce; this saves
        that read. Conversations in review, sending or handed off are left to the pipeline.
        """
        debounce = self._rules.debounce_seconds
        if debounce <= 0 or now - updated_at >= debounce:
            return False
        if record is not None and record.state not in PARKABLE_STATES:
            return False
        due_at = updated_at + debounce
        if record is not None and record.state is State.WAITING and record.due_at == due_at:
            return True  # parked already
        record = record or ConversationRecord.new(conversation_id)
        self._store.put(record.waiting(due_at, "debounce (from the search)"))
        return True

    def _handle_all(
        self, conversation_ids: list[str], listed: dict[str, float]
    ) -> tuple[list[Outcome], dict[str, Exception]]:
        """The outcomes, and the conversations that could not be handled or recorded, with
        why (the pipeline records its own failures: this is the store failing)."""
        outcomes: list[Outcome] = []
        crashed: dict[str, Exception] = {}
        if not conversation_ids:
            return outcomes, crashed
        with ThreadPoolExecutor(
            max_workers=min(self._concurrency, len(conversation_ids)),
            thread_name_prefix="conversation",
        ) as pool:
            futures: dict[Future[Outcome | None], str] = {}
            for conversation_id in conversation_ids:
                if self.stopping.is_set():
                    break
                future = pool.submit(
                    self._handle_unless_stopping, conversation_id, conversation_id in listed
                )
                futures[future] = conversation_id
            for future, conversation_id in futures.items():
                try:
                    outcome = future.result()
                except Exception as exc:  # the pipeline records failures; this is the store failing
                    log.exception(
                        "conversation %s: could not be handled or recorded: %s",
                        conversation_id,
                        exc,
                    )
                    crashed[conversation_id] = exc
                    continue
                if outcome is not None:
                    outcomes.append(outcome)
        return outcomes, crashed

    def _handle_unless_stopping(self, conversation_id: str, listed: bool) -> Outcome | None:
        if self.stopping.is_set():
            return None  # not started: picked up again on the next start
        if not listed or self._findings is None:
            return self._pipeline.handle(conversation_id)
        found_at = self._findings.found_at(conversation_id)
        if found_at is None:
            return None  # another replica handled it since the list was read
        outcome = self._pipeline.handle(conversation_id)
        if outcome.reason != CLAIMED_ELSEWHERE and outcome.status is not Status.ABANDONED:
            self._findings.handled(conversation_id, found_at)
        return outcome

    def run_forever(self) -> None:
        """Poll now and then every `self.interval` seconds (adaptive) until stopping."""
        import schedule

        scheduler = schedule.Scheduler()

        def poll_and_reschedule() -> None:
            result = self._poll_safely()
            if result is not None:
                self.interval = self.next_interval(result)
            scheduler.clear()
            scheduler.every(max(1, round(self.interval))).seconds.do(poll_and_reschedule)

        poll_and_reschedule()
        while not self.stopping.is_set():
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            self.stopping.wait(timeout=min(max(idle if idle is not None else 1.0, 0.05), 1.0))
        log.info("stopped polling")

    def _poll_safely(self) -> CycleResult | None:
        if self.stopping.is_set():
            return None
        try:
            return self.poll_once()
        except Exception:  # a bad cycle must not end the daemon; the next one tries again
            log.exception("poll crashed; the next poll will try again")
            return None


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
