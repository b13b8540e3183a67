"""A fake file host for tests: serves attachments on 127.0.0.1, badly when asked to.

    with FakeFiles() as files:
        url = files.add("/shot.png", PNG_BYTES, "image/png")
        requests.get(url)             # url ends in ?signature=..., like Intercom's
        assert files.requests == ["/shot.png"]

`add()` registers a file and returns its full URL, with a `?signature=...` query that
looks like the signed token of an Intercom attachment URL (the server ignores it). What
the server does wrong on request, per file:

* `delay`: waits that long before answering (the headers too);
* `trickle`: sends the headers, then one byte of `data` (over and over) every 0.2 s,
  forever, until the client goes away or the fake stops;
* `content_length`: the Content-Length header says this instead of the real length (the
  real body is sent anyway, and the connection closed after it);
* `chunked`: no Content-Length at all; the body goes out with chunked encoding;
* `status`: answered instead of 200 (with `data` as the body);
* `redirect_to`: answers 302 (or `status`, when it is a 3xx) with this Location;
* `headers`: extra response headers (e.g. Set-Cookie).

Unknown paths are 404. `requests` lists the path (no query) of every request, in order;
`request_headers` the headers each one came with.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from dataclasses import dataclass, field
from typing import Self

from tests.fakes.loopback import JsonHandler, LoopbackServer

__all__ = ["TRICKLE_INTERVAL", "FakeFiles"]

TRICKLE_INTERVAL = 0.2  # seconds between two bytes of a trickling answer
_CHUNK = 16 * 1024


@dataclass(frozen=True)
class _File:
    data: bytes
    content_type: str
    delay: float = 0.0
    trickle: bool = False
    status: int = 200
    content_length: int | None = None
    chunked: bool = False
    redirect_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(JsonHandler["FakeFiles"]):
    def handle(self) -> None:
        # A client that stops reading (too big, too slow) resets the connection: expected.
        with contextlib.suppress(ConnectionError):
            super().handle()

    def dispatch(self) -> None:
        fake = self.server.fake
        path = self.path.split("?", 1)[0]
        file = fake._record(path, {name: value for name, value in self.headers.items()})
        if file is None:
            self.send_bytes(404, b"Not Found", [("Content-Type", "text/plain")])
            return
        if file.delay > 0 and fake._stopping.wait(file.delay):
            self.close_connection = True
            return
        extra = list(file.headers.items())
        if file.redirect_to is not None:
            status = file.status if 300 <= file.status < 400 else 302
            self.send_bytes(status, b"", [("Location", file.redirect_to), *extra])
            return
        headers = [("Content-Type", file.content_type), *extra]
        if file.trickle:
            self._trickle(file, headers)
        elif file.chunked:
            self._send_chunked(file, headers)
        elif file.content_length is not None:
            self._send_lying(file, headers)
        else:
            self.send_bytes(file.status, file.data, headers)

    def _head(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()

    def _trickle(self, file: _File, headers: list[tuple[str, str]]) -> None:
        self.close_connection = True
        if file.content_length is not None:
            headers.append(("Content-Length", str(file.content_length)))
        headers.append(("Connection", "close"))
        data = file.data or b"\0"
        stopping = self.server.fake._stopping
        try:
            self._head(file.status, headers)
            self.wfile.flush()
            sent = 0
            while not stopping.wait(TRICKLE_INTERVAL):
                self.wfile.write(data[sent % len(data) : sent % len(data) + 1])
                self.wfile.flush()
                sent += 1
        except OSError:
            pass  # the client went away, as it should

    def _send_chunked(self, file: _File, headers: list[tuple[str, str]]) -> None:
        try:
            self._head(file.status, [*headers, ("Transfer-Encoding", "chunked")])
            for start in range(0, len(file.data), _CHUNK):
                piece = file.data[start : start + _CHUNK]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _send_lying(self, file: _File, headers: list[tuple[str, str]]) -> None:
        # The body does not match the header: the connection cannot be reused after it.
        self.close_connection = True
        try:
            self._head(
                file.status,
                [*headers, ("Content-Length", str(file.content_length)), ("Connection", "close")],
            )
            self.wfile.write(file.data)
            self.wfile.flush()
        except OSError:
            pass


class FakeFiles(LoopbackServer):
    """Files on 127.0.0.1; use as a context manager (or start()/stop())."""

    handler_class = _Handler
    thread_label = "FakeFiles"

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.request_headers: list[dict[str, str]] = []
        self._files: dict[str, _File] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> Self:
        self._stopping.clear()
        return super().start()

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers that delay or trickle
        super().stop()

    def add(
        self,
        path: str,
        data: bytes,
        content_type: str,
        *,
        delay: float = 0,
        trickle: bool = False,
        status: int = 200,
        content_length: int | None = None,
        chunked: bool = False,
        redirect_to: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Serve `data` at `path` (from now on); returns the file's full, "signed" URL."""
        if not path.startswith("/") or "?" in path:
            raise ValueError(f"path must start with / and have no query: {path!r}")
        file = _File(
            data=data,
            content_type=content_type,
            delay=delay,
            trickle=trickle,
            status=status,
            content_length=content_length,
            chunked=chunked,
            redirect_to=redirect_to,
            headers=dict(headers or {}),
        )
        with self._lock:
            self._files[path] = file
        return f"{self.base_url}{path}?signature={secrets.token_hex(16)}"

    def _record(self, path: str, headers: dict[str, str]) -> _File | None:
        with self._lock:
            self.requests.append(path)
            self.request_headers.append(headers)
            return self._files.get(path)
