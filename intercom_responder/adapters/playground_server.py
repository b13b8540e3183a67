"""The playground's page and JSON API over HTTP (aiohttp's web server).

The page is one self-contained HTML file beside this module (no build step, nothing
fetched from elsewhere). Each API call runs in a worker thread, so a slow model never
blocks the server. With a token, every request must carry it (`Authorization: Bearer`,
or `?token=` for the page itself), compared in constant time.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..core.playground import PlaygroundInputError, UnknownSessionError
from .responder import ResponderError
from .web import BackgroundWebServer

log = logging.getLogger(__name__)

PAGE = Path(__file__).with_name("playground_page.html")
#: Request bodies larger than this are refused (413); a message is at most 10,000 chars.
MAX_BODY_BYTES = 256 * 1024


class PlaygroundApi(Protocol):
    def new_session(self) -> dict[str, Any]: ...
    def message(self, session_id: str, body: Any) -> dict[str, Any]: ...
    def review(self, session_id: str, body: Any) -> dict[str, Any]: ...
    def session(self, session_id: str) -> dict[str, Any]: ...
    def close(self) -> None: ...


class PlaygroundServer:
    def __init__(
        self, api: PlaygroundApi, *, host: str, port: int, token: str | None = None
    ) -> None:
        self._api = api
        self._token = token
        self._server = BackgroundWebServer(
            f"{host}:{port}",
            "the playground's --host/--port",
            self._routes,
            max_body=MAX_BODY_BYTES,
        )

    @property
    def url(self) -> str:
        host = self._server.host
        shown = f"[{host}]" if ":" in host else host
        query = f"?token={self._token}" if self._token else ""
        return f"http://{shown}:{self._server.port}/{query}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
        self._api.close()

    def _routes(self, app: Any) -> None:
        from aiohttp import web

        @web.middleware
        async def guard(request: Any, handler: Callable[[Any], Any]) -> Any:
            return await self._guard(request, handler)

        app.middlewares.append(guard)
        app.router.add_get("/", self._page)
        app.router.add_post("/api/sessions", self._new)
        app.router.add_get("/api/sessions/{id}", self._show)
        app.router.add_post("/api/sessions/{id}/messages", self._message)
        app.router.add_post("/api/sessions/{id}/review", self._review)

    # --- requests ----------------------------------------------------------------------

    async def _guard(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        """The token (when set), then the handler; our errors become JSON answers."""
        from aiohttp import web

        if self._token and not self._authorized(request):
            return _error(401, "missing or wrong token (PLAYGROUND_TOKEN)")
        try:
            return await handler(request)
        except web.HTTPException as exc:  # 404/405 of the router, 413 of the body limit
            return _error(exc.status, exc.reason)

    def _authorized(self, request: Any) -> bool:
        assert self._token is not None
        header = request.headers.get("Authorization", "")
        given = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        given = given or request.query.get("token", "")
        return hmac.compare_digest(given.encode(), self._token.encode())

    async def _page(self, request: Any) -> Any:
        from aiohttp import web

        return web.Response(
            body=PAGE.read_bytes(),
            content_type="text/html",
            charset="utf-8",
            headers={
                # the page loads nothing from elsewhere, and no one may frame it
                "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                "style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )

    async def _new(self, request: Any) -> Any:
        return await self._call(request, lambda body: self._api.new_session(), status=201)

    async def _show(self, request: Any) -> Any:
        session_id = request.match_info["id"]
        return await self._call(request, lambda body: self._api.session(session_id))

    async def _message(self, request: Any) -> Any:
        session_id = request.match_info["id"]
        return await self._call(request, lambda body: self._api.message(session_id, body))

    async def _review(self, request: Any) -> Any:
        session_id = request.match_info["id"]
        return await self._call(request, lambda body: self._api.review(session_id, body))

    async def _call(
        self, request: Any, work: Callable[[Any], dict[str, Any]], *, status: int = 200
    ) -> Any:
        """Read the body, run the work in a thread, and answer JSON."""
        from aiohttp import web

        try:
            body = await _body(request)
            result = await asyncio.to_thread(work, body)
        except PlaygroundInputError as exc:
            return _error(400, str(exc))
        except UnknownSessionError as exc:
            return _error(404, str(exc))
        except ResponderError as exc:  # the model failed: the page says so
            log.warning("playground: %s", exc)
            return _error(502, f"the model failed: {exc}")
        return web.json_response(result, status=status)


async def _body(request: Any) -> Any:
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PlaygroundInputError("the body is not JSON") from None


def _error(status: int, message: str) -> Any:
    from aiohttp import web

    return web.json_response({"error": message}, status=status)
