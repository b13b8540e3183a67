"""`GET /health` and `GET /metrics` on HEALTH_ADDR, from a small stdlib HTTP server.

Healthy means: the last poll that completed succeeded, within three poll intervals.
A stuck loop, an Intercom outage or a broken token turn it 503 with the reason, so a
container orchestrator or a monitor notices without reading logs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .metrics import Metrics

log = logging.getLogger(__name__)


class Health:
    def __init__(
        self, interval: Callable[[], float], *, clock: Callable[[], float] = time.time
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self.started_at = clock()
        self.last_ok_at: float | None = None
        self.last_poll_at: float | None = None
        self.last_error: str | None = None
        self.leading: bool | None = None  # replicas on one database: holds the poll lease

    def poll_finished(self, ok: bool, error: str | None, *, leading: bool | None = None) -> None:
        with self._lock:
            now = self._clock()
            self.last_poll_at = now
            self.leading = leading
            if ok:
                self.last_ok_at = now
                self.last_error = None
            else:
                self.last_error = error or "the poll failed"

    def status(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            now = self._clock()
            allowed = 3 * self._interval()
            body: dict[str, Any] = {
                "uptime_seconds": round(now - self.started_at, 1),
                "poll_interval_seconds": self._interval(),
            }
            if self.leading is not None:  # which replica searches Intercom, for a person
                body["replica"] = "leader" if self.leading else "follower"
            if self.last_ok_at is not None:
                body["last_successful_poll_seconds_ago"] = round(now - self.last_ok_at, 1)
            if self.last_ok_at is None:
                reason = self.last_error or "no poll has completed yet"
            elif self.last_error is not None:
                reason = f"the last poll failed: {self.last_error}"
            elif now - self.last_ok_at > allowed:
                reason = f"no successful poll for {now - self.last_ok_at:.0f} s (> 3 intervals)"
            else:
                body["status"] = "ok"
                return True, body
            body.update(status="unhealthy", reason=reason)
            return False, body


class HealthServer:
    def __init__(self, address: str, health: Health, metrics: Metrics) -> None:
        host, _, port = address.rpartition(":")
        self._host = host.strip("[]") or "127.0.0.1"
        self._port = int(port)
        self._health = health
        self._metrics = metrics
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self) -> None:
        health, metrics = self._health, self._metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/health":
                    healthy, body = health.status()
                    payload = json.dumps(body).encode()
                    self._send(200 if healthy else 503, payload, "application/json")
                elif path == "/metrics":
                    payload, content_type = metrics.render()
                    self._send(200, payload, content_type)
                else:
                    self._send(404, b'{"error": "not found"}', "application/json")

            def _send(self, status: int, payload: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("health: " + format, *args)

        server = ThreadingHTTPServer((self._host, self._port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="health", daemon=True)
        self._thread.start()
        log.info("health and metrics on http://%s:%d/health and /metrics", self._host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
