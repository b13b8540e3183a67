"""aiohttp's web server in a thread of its own: the webhook receiver and the playground.

The daemon's threads stay synchronous; each server runs its own asyncio loop, binds at
`start()` (raising `WebStartError` naming the setting when it cannot) and closes at
`stop()` without hanging a shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..errors import Dependency, IntercomResponderError

log = logging.getLogger(__name__)

#: Seconds to wait for a server to bind at start, and to close at stop.
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


class WebStartError(IntercomResponderError):
    """A server could not listen on its address (in use, not allowed, no such address)."""

    dependency = Dependency.INTERNAL


class BackgroundWebServer:
    def __init__(
        self, address: str, setting: str, build: Callable[[Any], None], *, max_body: int
    ) -> None:
        host, _, port = address.rpartition(":")
        self.host = host.strip("[]") or "127.0.0.1"
        self._port = int(port)
        self._address = address
        self._setting = setting  # named in errors: WEBHOOK_ADDR, --host/--port
        self._build = build  # registers the routes on a web.Application
        self._max_body = max_body
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._setting, daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise WebStartError(f"{self._setting} {self._address}: the server did not start")
        if self._error is not None:
            raise WebStartError(
                f"{self._setting} {self._address}: cannot listen there ({self._error})"
            ) from self._error

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
                log.debug("closing the %s server failed: %s", self._setting, exc)
            loop.close()

    async def _listen(self) -> None:
        from aiohttp import web

        app = web.Application(client_max_size=self._max_body)
        self._build(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self.host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = int(runner.addresses[0][1])
