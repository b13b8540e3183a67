"""`POST /webhooks/intercom` on WEBHOOK_ADDR: aiohttp's web server in a thread of its own.

Each request is checked (size, signature, shape) and answered at once; a good
notification is handed to `on_notification`, which only queues it, so Intercom gets its
200 in milliseconds whatever the model or Intercom's API are doing. Nothing of the body
is logged above DEBUG.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..core.webhook import (
    MAX_BODY_BYTES,
    Notification,
    NotificationError,
    parse_notification,
    signature_ok,
)
from .web import BackgroundWebServer

log = logging.getLogger(__name__)

PATH = "/webhooks/intercom"


class WebhookServer:
    def __init__(
        self,
        address: str,
        *,
        secret: str,
        on_notification: Callable[[Notification], None],
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self._secret = secret
        self._on_notification = on_notification
        self._on_request = on_request  # metrics: "accepted", "bad_signature", ...
        self._warned: set[str] = set()
        self._server = BackgroundWebServer(
            address, "WEBHOOK_ADDR", self._routes, max_body=MAX_BODY_BYTES
        )

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return f"http://{self._server.host}:{self.port}{PATH}"

    def start(self) -> None:
        """Listen; raises `WebStartError` naming WEBHOOK_ADDR when that is impossible."""
        self._server.start()
        log.info("webhook receiver on %s", self.url)

    def stop(self) -> None:
        self._server.stop()

    def _routes(self, app: Any) -> None:
        app.router.add_route("POST", PATH, self._receive)
        app.router.add_route("HEAD", PATH, self._check)

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
