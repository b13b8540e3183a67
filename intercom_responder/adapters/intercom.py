"""HTTP to Intercom: auth, version header, timeouts, retries, rate limits.

Writes are special. A reply that timed out or got a 5xx may have been applied, so
the client never retries it blindly: it raises `AmbiguousWriteError` and the caller
looks at the conversation to see whether the part landed. Only failures that prove
the request never reached Intercom (connection refused, connect timeout, 429) are
retried for writes.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
from urllib3.exceptions import NameResolutionError, NewConnectionError

from .. import __version__
from ..core.text import describe, one_line
from ..defaults import (
    ARTICLES_PAGE_SIZE,
    CONNECT_TIMEOUT,
    HTTP_ATTEMPTS,
    INTERCOM_API_BASE,
    INTERCOM_API_VERSION,
    INTERCOM_TIMEOUT,
    MAX_RATE_LIMIT_WAIT,
    RATE_LIMIT_RESERVE,
    SEARCH_PAGE_SIZE,
)
from ..errors import Dependency, IntercomResponderError
from .breaker import CircuitBreaker

log = logging.getLogger(__name__)


class IntercomError(IntercomResponderError):
    """An Intercom call failed; carries what a person needs to act on it."""

    dependency = Dependency.INTERCOM

    def __init__(
        self,
        method: str,
        path: str,
        *,
        status: int | None = None,
        errors: list[tuple[str, str]] | None = None,
        detail: str = "",
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.errors = errors or []
        message = f"Intercom {method} {path} failed"
        if status:
            message += f" with HTTP {status}"
        if self.errors:
            message += ": " + "; ".join(f"{code}: {text}" for code, text in self.errors)
        if detail:
            message += f" ({detail})"
        super().__init__(message)

    @property
    def codes(self) -> list[str]:
        return [code for code, _ in self.errors]


class AmbiguousWriteError(IntercomError):
    """A write may or may not have been applied (timeout, dropped connection, 5xx)."""


class _RetryableError(Exception):
    """Internal: this attempt failed in a way that is safe to try again."""

    def __init__(self, error: IntercomError, wait: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.wait = wait


@dataclass
class _RateWindow:
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None


class RateLimiter:
    """Shared by all threads: slows down before Intercom has to say 429.

    Intercom spreads its per-minute limit over 10 s windows and tells how much of the
    current window is left. When fewer than `reserve` calls remain, callers wait for
    the window to reset instead of spending the last calls and getting 429s.
    """

    def __init__(
        self,
        *,
        reserve_fraction: float = RATE_LIMIT_RESERVE,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._on_wait = on_wait
        self._window = _RateWindow()
        self._lock = threading.Lock()
        self._reserve_fraction = reserve_fraction
        self._clock = clock
        self._sleep = sleep
        self.waits = 0

    def before_request(self) -> None:
        with self._lock:
            window = self._window
            wait = 0.0
            if window.limit and window.remaining is not None and window.reset_at:
                reserve = max(1, int(window.limit * self._reserve_fraction))
                if window.remaining <= reserve:
                    wait = min(max(window.reset_at - self._clock(), 0.0), MAX_RATE_LIMIT_WAIT)
                    if wait == 0.0:
                        window.remaining = None  # the window has reset: trust the next answer
                if window.remaining is not None:
                    window.remaining -= 1  # other threads see the call we are about to make
        if wait > 0:
            log.info("Intercom rate limit nearly used up; waiting %.1f s", wait)
            self.waits += 1
            if self._on_wait is not None:
                self._on_wait(wait)
            self._sleep(wait)

    def after_response(self, response: requests.Response) -> None:
        limit = _header_int(response, "X-RateLimit-Limit")
        remaining = _header_int(response, "X-RateLimit-Remaining")
        reset = _header_int(response, "X-RateLimit-Reset")
        if limit is None or remaining is None:
            return
        with self._lock:
            self._window = _RateWindow(limit, remaining, float(reset) if reset else None)

    def wait_after_429(self, response: requests.Response) -> float:
        """Seconds until the window resets; the caller sleeps them once, not twice."""
        reset = _header_int(response, "X-RateLimit-Reset")
        wait = 1.0 if reset is None else reset - self._clock()
        wait = min(max(wait, 0.0), MAX_RATE_LIMIT_WAIT) + random.uniform(0, 0.25)
        with self._lock:
            self._window = _RateWindow()
            self.waits += 1
        if self._on_wait is not None:
            self._on_wait(wait)
        return wait


class IntercomClient:
    def __init__(
        self,
        *,
        token: str,
        base_url: str = INTERCOM_API_BASE,
        version: str = INTERCOM_API_VERSION,
        timeout: float = INTERCOM_TIMEOUT,
        session: requests.Session | None = None,
        rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = HTTP_ATTEMPTS,
        breaker: CircuitBreaker | None = None,
        on_call: Callable[[], None] | None = None,
        on_rate_limit_wait: Callable[[float], None] | None = None,
        pool_size: int = 10,
    ) -> None:
        self._breaker = breaker
        self._on_call = on_call
        self._base_url = base_url.rstrip("/")
        self._timeout = (min(CONNECT_TIMEOUT, timeout), timeout)
        if session is None:
            session = requests.Session()
            # one pooled connection per worker thread, so none is dropped and re-opened
            adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        self._session = session
        self._session.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "Intercom-Version": version,
                "Accept": "application/json",
                "User-Agent": f"intercom-responder/{__version__}",
            }
        )
        self.rate_limiter = rate_limiter or RateLimiter(sleep=sleep, on_wait=on_rate_limit_wait)
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._count_lock = threading.Lock()
        self.calls = 0

    # --- endpoints -------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        return self._request("GET", "/me")

    def get_admin(self, admin_id: str) -> dict[str, Any]:
        """One teammate; `IntercomError` with status 404 when the workspace has none by that id."""
        return self._request("GET", f"/admins/{admin_id}")

    def list_admins(self) -> list[dict[str, Any]]:
        """Every teammate of the workspace (`GET /admins`)."""
        admins = self._request("GET", "/admins").get("admins")
        return [a for a in admins if isinstance(a, dict)] if isinstance(admins, list) else []

    def list_teams(self) -> list[dict[str, Any]]:
        """Every team of the workspace (`GET /teams`)."""
        teams = self._request("GET", "/teams").get("teams")
        return [t for t in teams if isinstance(t, dict)] if isinstance(teams, list) else []

    def search_conversations(
        self, query: dict[str, Any], *, per_page: int = SEARCH_PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Every conversation matching `query`, following `pages.next.starting_after`."""
        return self._search("/conversations/search", "conversations", query, per_page)

    def search_tickets(
        self, query: dict[str, Any], *, per_page: int = SEARCH_PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Every ticket matching `query` (the conversation search's language and pages)."""
        return self._search("/tickets/search", "tickets", query, per_page)

    def _search(
        self, path: str, key: str, query: dict[str, Any], per_page: int
    ) -> Iterator[dict[str, Any]]:
        starting_after: str | None = None
        seen_cursors: set[str] = set()
        while True:
            pagination: dict[str, Any] = {"per_page": per_page}
            if starting_after:
                pagination["starting_after"] = starting_after
            page = self._request("POST", path, json={"query": query, "pagination": pagination})
            found = page.get(key)
            if not isinstance(found, list):
                raise IntercomError("POST", path, detail=f"answer has no {key!r} list")
            yield from (item for item in found if isinstance(item, dict))
            pages = page.get("pages") or {}
            next_page = pages.get("next") if isinstance(pages, dict) else None
            starting_after = (
                next_page.get("starting_after") if isinstance(next_page, dict) else None
            )
            if not starting_after or starting_after in seen_cursors:
                return
            seen_cursors.add(starting_after)

    def list_articles(self, *, per_page: int = ARTICLES_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every help-center article, drafts too (`GET /articles`, page by page).

        The list is sorted by `updated_at`, newest first, and paged with `page` and
        `per_page` up to `pages.total_pages`.
        """
        page = 1
        while True:
            answer = self._request("GET", f"/articles?page={page}&per_page={per_page}")
            articles = answer.get("data")
            if not isinstance(articles, list):
                raise IntercomError("GET", "/articles", detail="answer has no 'data' list")
            yield from (a for a in articles if isinstance(a, dict))
            pages = answer.get("pages") if isinstance(answer.get("pages"), dict) else {}
            total = pages.get("total_pages") if isinstance(pages, dict) else None
            if not articles or not isinstance(total, int) or page >= total:
                return
            page += 1

    def get_ticket(self, ticket_id: str) -> dict[str, Any]:
        """One ticket by its API `id` (not the `ticket_id` number the Inbox shows)."""
        return self._request("GET", f"/tickets/{ticket_id}")

    def assign_ticket(self, ticket_id: str, *, admin_id: str, assignee_id: str) -> dict[str, Any]:
        """Assign a ticket to a team or teammate; repeating it changes nothing.

        The 2.16 shape: `admin_id` (who acts, an integer) and `assignee_id` (a string)
        at the top level of `PUT /tickets/{id}`; older versions nested them.
        """
        acting: int | str = int(admin_id) if admin_id.isdigit() else admin_id
        return self._request(
            "PUT",
            f"/tickets/{ticket_id}",
            json={"admin_id": acting, "assignee_id": str(assignee_id)},
        )

    def get_conversation(self, conversation_id: str) -> dict[str, Any]:
        return self._request("GET", f"/conversations/{conversation_id}")

    def reply(
        self, conversation_id: str, *, admin_id: str, body_html: str, message_type: str
    ) -> dict[str, Any]:
        """Post a comment or note as `admin_id`; returns the whole conversation."""
        return self._request(
            "POST",
            f"/conversations/{conversation_id}/reply",
            json={
                "message_type": message_type,
                "type": "admin",
                "admin_id": admin_id,
                "body": body_html,
            },
            idempotent=False,
        )

    def assign(
        self, conversation_id: str, *, admin_id: str, assignee_type: str, assignee_id: str
    ) -> dict[str, Any]:
        """Assign to a team or teammate; repeating an assignment changes nothing."""
        return self._request(
            "POST",
            f"/conversations/{conversation_id}/parts",
            json={
                "message_type": "assignment",
                "type": assignee_type,
                "admin_id": admin_id,
                "assignee_id": assignee_id,
            },
        )

    def mark_read(self, conversation_id: str) -> dict[str, Any]:
        return self._request("PUT", f"/conversations/{conversation_id}", json={"read": True})

    # --- transport ---------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        if self._breaker is not None:
            self._breaker.check()  # CircuitOpenError: Intercom is failing, try later
        try:
            data = self._retrying_request(method, path, json=json, idempotent=idempotent)
        except IntercomError as exc:
            if self._breaker is not None and (exc.status is None or exc.status >= 500):
                self._breaker.failure()  # unreachable or broken, not a 4xx about our request
            raise
        if self._breaker is not None:
            self._breaker.success()
        return data

    def _retrying_request(
        self, method: str, path: str, *, json: Any, idempotent: bool
    ) -> dict[str, Any]:
        retrying = Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, _RetryableError)),
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt(method, path, json, idempotent)
        except _RetryableError as exhausted:
            raise exhausted.error from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, method: str, path: str, json: Any, idempotent: bool) -> dict[str, Any]:
        self.rate_limiter.before_request()
        with self._count_lock:
            self.calls += 1
        if self._on_call is not None:
            self._on_call()
        url = self._base_url + path
        try:
            response = self._session.request(method, url, json=json, timeout=self._timeout)
        except requests.RequestException as exc:
            error_cls = IntercomError if idempotent or _never_sent(exc) else AmbiguousWriteError
            error = error_cls(method, path, detail=describe(exc))
            if idempotent or _never_sent(exc):
                log.warning("%s; will retry", error)
                raise _RetryableError(error) from exc
            raise error from exc
        self.rate_limiter.after_response(response)
        if response.status_code == 429:
            error = IntercomError(method, path, status=429, errors=_errors(response))
            wait = self.rate_limiter.wait_after_429(response)
            log.warning("Intercom rate limit hit on %s %s; waiting %.1f s", method, path, wait)
            raise _RetryableError(error, wait=wait)
        if response.status_code >= 500:
            error_cls = IntercomError if idempotent else AmbiguousWriteError
            error = error_cls(method, path, status=response.status_code, errors=_errors(response))
            if not idempotent:
                raise error
            log.warning("%s; will retry", error)
            raise _RetryableError(error)
        if response.status_code >= 400:
            raise IntercomError(method, path, status=response.status_code, errors=_errors(response))
        try:
            data = response.json()
        except ValueError:
            raise IntercomError(
                method, path, status=response.status_code, detail="answer is not JSON"
            ) from None
        if not isinstance(data, dict):
            raise IntercomError(
                method, path, status=response.status_code, detail="answer is not a JSON object"
            )
        return data

    @staticmethod
    def _wait(state: RetryCallState) -> float:
        outcome = state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, _RetryableError) and exc.wait is not None:
            return exc.wait
        # exponential backoff with full jitter: 0.5, 1, 2, 4 ... seconds, capped at 30
        return random.uniform(0, min(30.0, 0.5 * 2 ** (state.attempt_number - 1))) + 0.1


def _never_sent(exc: BaseException) -> bool:
    """True when the request provably did not reach Intercom (safe to send again)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, NewConnectionError | NameResolutionError):
            return True
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            current = reason
            continue
        args = getattr(current, "args", ())
        nested = args[0] if args and isinstance(args[0], BaseException) else None
        current = nested or current.__cause__ or current.__context__
    return False


def _errors(response: requests.Response) -> list[tuple[str, str]]:
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip()
        return [("http_error", one_line(text, 300))] if text else []
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return []
    return [
        (str(e.get("code") or "unknown"), str(e.get("message") or ""))
        for e in errors
        if isinstance(e, dict)
    ]


def _header_int(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None
