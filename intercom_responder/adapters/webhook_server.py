"""`POST /webhooks/intercom` on WEBHOOK_ADDR: aiohttp's web server in a thread of its own.

Each request is checked (size, signature, shape) and answered at once; a good
notification is handed to `on_notification`, which only queues it, so Intercom gets its
200 in milliseconds whatever the model or Intercom's API are doing. Nothing of the body
is logged above DEBUG.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..core.webhook import (
    MAX_BODY_BYTES,
    Notification,
    NotificationError,
    parse_notification,
    signature_ok,
)
from ..errors import Dependency, IntercomResponderError

log = logging.getLogger(__name__)

PATH = "/webhooks/intercom"
#: Seconds to wait for the server to bind at start, and to close at stop.
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


class WebhookStartError(IntercomResponderError):
    """The receiver could not listen on WEBHOOK_ADDR (in use, not allowed, no such address)."""

    dependency = Dependency.INTERNAL


class WebhookServer:
    def __init__(
        self,
        address: str,
        *,
        secret: str,
        on_notification: Callable[[Notification], None],
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        host, _, port = address.rpartition(":")
        self._host = host.strip("[]") or "127.0.0.1"
        self._port = int(port)
        self._address = address
        self._secret = secret
        self._on_notification = on_notification
        self._on_request = on_request  # metrics: "accepted", "bad_signature", ...
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._warned: set[str] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}{PATH}"

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Listen; raises `WebhookStartError` naming WEBHOOK_ADDR when that is impossible."""
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise WebhookStartError(f"WEBHOOK_ADDR {self._address}: the receiver did not start")
        if self._error is not None:
            raise WebhookStartError(
                f"WEBHOOK_ADDR {self._address}: cannot listen there ({self._error})"
            ) from self._error
        log.info("webhook receiver on http://%s:%d%s", self._host, self.port, PATH)

    def stop(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
            self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._listen())
        except BaseException as exc:  # bind errors are reported by start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                loop.run_until_complete(asyncio.wait_for(self._runner.cleanup(), STOP_TIMEOUT))
            except Exception as exc:  # closing must not hang a shutdown
                log.debug("closing the webhook receiver failed: %s", exc)
            loop.close()

    async def _listen(self) -> None:
        from aiohttp import web

        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("POST", PATH, self._receive)
        app.router.add_route("HEAD", PATH, self._check)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = int(runner.addresses[0][1])

    # --- requests --------------------------------------------------------------------------

    async def _check(self, request: Any) -> Any:
        """Intercom checks the URL with a HEAD request before it sends anything."""
        from aiohttp import web

        return web.Response(status=200)

    async def _receive(self, request: Any) -> Any:
        from aiohttp import web

        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return self._refuse(413, "too_large", "the body is over 1 MiB")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._refuse(413, "too_large", "the body is over 1 MiB")
        if not signature_ok(body, request.headers.get("X-Hub-Signature"), self._secret):
            return self._refuse(401, "bad_signature", "missing or wrong X-Hub-Signature")
        try:
            notification = parse_notification(body)
        except NotificationError as exc:
            return self._refuse(400, "bad_body", "not a usable notification", detail=str(exc))
        log.debug(
            "webhook %s for conversation %s (%s)",
            notification.topic,
            notification.conversation_id,
            notification.notification_id,
        )
        self._count("accepted")
        try:
            self._on_notification(notification)  # queues it; the work happens elsewhere
        except Exception:  # a bug here must not turn into Intercom retrying for days
            log.exception("webhook: could not queue conversation %s", notification.conversation_id)
        return web.json_response({"ok": True})

    def _refuse(self, status: int, outcome: str, why: str, *, detail: str = "") -> Any:
        """Answer an error; logged once a kind at WARNING (a flood must not fill the disk)."""
        from aiohttp import web

        self._count(outcome)
        level = logging.DEBUG if outcome in self._warned else logging.WARNING
        self._warned.add(outcome)
        log.log(level, "webhook request refused with %d: %s (counted in /metrics)", status, why)
        if detail:
            log.debug("webhook request refused: %s", detail)
        return web.json_response({"ok": False, "error": detail or why}, status=status)

    def _count(self, outcome: str) -> None:
        if self._on_request is not None:
            self._on_request(outcome)
