"""HTTP plumbing shared by the fakes: a loopback server that starts and stops fast.

A fake mixes in :class:`LoopbackServer` and names a :class:`JsonHandler` subclass::

    class _Handler(JsonHandler["FakeThing"]):
        def dispatch(self) -> None:  # every GET/POST/PUT/PATCH/DELETE lands here
            self.send_json(200, self.server.fake.answer(self.read_body()))

    class FakeThing(LoopbackServer):
        handler_class = _Handler
        thread_label = "fake-thing"

    with FakeThing() as fake:
        requests.get(fake.base_url)

The server is a stdlib ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive) on 127.0.0.1 at a
random free port, served from a daemon thread that polls every 20 ms, so ``stop()``
takes ~20 ms. ``stop()`` also shuts down the connections still open (idle keep-alive
ones included), so clients see the server go away at once; it never waits for a
handler that is still busy (a fake that sleeps in a handler wakes it itself, see
``FakeIntercom.stop``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

__all__ = ["JsonHandler", "LoopbackHTTPServer", "LoopbackServer"]

FakeT = TypeVar("FakeT")


class LoopbackHTTPServer(ThreadingHTTPServer, Generic[FakeT]):
    """A threading HTTP server on 127.0.0.1 (random port) that tracks its connections."""

    daemon_threads = True
    block_on_close = False  # stop() must not wait for a handler that is still sleeping
    request_queue_size = 128

    def __init__(self, fake: FakeT, handler_class: type[JsonHandler[FakeT]]) -> None:
        self.fake = fake
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler_class)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() calls socket.getfqdn(), which can stall on DNS.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def close_connections(self) -> None:
        """Shut down every open connection (busy or idle keep-alive)."""
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class JsonHandler(BaseHTTPRequestHandler, Generic[FakeT]):
    """HTTP/1.1 handler base: every method goes to :meth:`dispatch`; body/reply helpers.

    ``self.server.fake`` is the fake that started the server. With ``log_label`` set,
    requests are logged at DEBUG level, prefixed with it, to the logger named after the
    subclass's module; without, the handler is quiet.
    """

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY, Nagle plus the client's
    # delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    log_label: ClassVar[str | None] = None
    server: LoopbackHTTPServer[FakeT]

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        if self.log_label is not None:
            logger = logging.getLogger(type(self).__module__)
            logger.debug("%s %s - %s", self.log_label, self.address_string(), format % args)

    def dispatch(self) -> None:
        """Answer the request (any method)."""
        raise NotImplementedError

    def do_GET(self) -> None:
        self.dispatch()

    def do_POST(self) -> None:
        self.dispatch()

    def do_PUT(self) -> None:
        self.dispatch()

    def do_PATCH(self) -> None:
        self.dispatch()

    def do_DELETE(self) -> None:
        self.dispatch()

    def read_body(self) -> bytes:
        """The request body, sent with Content-Length or chunked (trailers skipped).

        Raises ValueError or OSError on a malformed body or a broken connection.
        """
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Skip trailers up to the terminating empty line.
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_json(
        self,
        status: int,
        payload: Any,
        headers: Iterable[tuple[str, str]] = (),
        *,
        content_type: str = "application/json",
    ) -> None:
        """Answer ``payload`` as JSON; see :meth:`send_bytes`."""
        body = json.dumps(payload).encode("utf-8")
        self.send_bytes(status, body, [("Content-Type", content_type), *headers])

    def send_bytes(self, status: int, body: bytes, headers: Iterable[tuple[str, str]]) -> None:
        """Answer ``body`` with ``headers`` as given, then Content-Length (and
        ``Connection: close`` when the connection is closing). If the client went away
        (e.g. its read timeout fired), the connection is just marked for closing."""
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True


class LoopbackServer:
    """Mixin giving a fake its server lifecycle: start()/stop(), ``base_url``/``port``
    and use as a context manager.

    Subclasses set ``handler_class``, ``thread_label`` (the serving thread is named
    ``"<thread_label>:<port>"``) and optionally ``url_suffix`` (appended to
    ``base_url``, e.g. ``"/v1"``).
    """

    handler_class: ClassVar[type[JsonHandler[Any]]]
    thread_label: ClassVar[str]
    url_suffix: ClassVar[str] = ""

    _server: LoopbackHTTPServer[Any] | None = None
    _thread: threading.Thread | None = None
    _base_url: str | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` + ``url_suffix``; available after :meth:`start`
        (and still after :meth:`stop`)."""
        if self._base_url is None:
            raise RuntimeError(
                f"{type(self).__name__} is not started; call start() or use it as a context manager"
            )
        return self._base_url

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._server.server_port

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        server = LoopbackHTTPServer(self, self.handler_class)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},  # default 0.5 s makes stop() slow
            name=f"{self.thread_label}:{server.server_port}",
            daemon=True,
        )
        thread.start()
        self._server = server
        self._thread = thread
        self._base_url = f"http://127.0.0.1:{server.server_port}{self.url_suffix}"
        return self

    def stop(self) -> None:
        """Stop serving and close every connection; idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = None
        self._thread = None
        server.shutdown()
        server.server_close()
        server.close_connections()  # drop idle keep-alive connections
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
