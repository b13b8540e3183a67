"""Images a customer attached: downloaded by the daemon itself, checked, ready for the model.

The model is never handed a URL to fetch: the daemon downloads each attachment with a
timeout and a size limit and passes it on as a base64 data URL. A download that goes
wrong in any way (too big, too slow, not an image, 404, unreachable) is not an error of
the daemon: `fetch` answers an `ImageProblem` with a short reason, for the prompt and the
log, and the draft goes on without that image.

What a download may do is limited on purpose, since the URL comes from a customer's
message: only http and https, at most `MAX_REDIRECTS` redirects (each one checked the
same way), a connect/read timeout plus one deadline for the whole download (a server
that trickles bytes forever is cut off), a size limit checked against Content-Length
before reading and again while reading, and no cookies or credentials (no session
headers, no cookie jar, no ~/.netrc). The type is decided by the file's first bytes, not
by the Content-Type header. Attachment URLs carry signed tokens in their query string,
so logs show scheme://host/path only.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from .. import __version__
from ..core.text import one_line

log = logging.getLogger(__name__)

IMAGE_TYPES = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
MAX_REDIRECTS = 3
CHUNK_BYTES = 64 * 1024  # one read; at most max_bytes + this much is ever held

_NOT_AN_IMAGE_FILE = "not a " + ", ".join(list(IMAGE_TYPES.values())[:-1])
_NOT_AN_IMAGE_FILE += f" or {list(IMAGE_TYPES.values())[-1]} image"
# A Content-Type that says nothing about the bytes; the magic bytes decide.
_UNTYPED = frozenset({"", "application/octet-stream", "binary/octet-stream"})


@dataclass(frozen=True)
class Image:
    """A downloaded image: `media_type` is one of `IMAGE_TYPES`, read from the bytes."""

    name: str  # the attachment's file name (for the prompt)
    media_type: str
    data: bytes = field(repr=False)

    def data_url(self) -> str:
        """`data:image/png;base64,...`, as OpenAI's `image_url` content part takes it."""
        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass(frozen=True)
class ImageProblem:
    """An attachment that is not given to the model, and why (short: "HTTP 404")."""

    name: str
    reason: str


class _DownloadError(Exception):
    """Internal: the download stops here, for `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImageFetcher:
    """Downloads attachments; shared by threads (one connection pool).

    `session` gives the connection pool, proxies and TLS settings only: its headers,
    cookies and auth are never sent. Give it a session of its own (responses may store
    cookies in its jar, which other users of a shared session would then send).
    """

    def __init__(
        self,
        *,
        max_bytes: int,
        timeout: float,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_bytes <= 0 or timeout <= 0:
            raise ValueError("max_bytes and timeout must be positive")
        self._max_bytes = max_bytes
        self._timeout = timeout
        self._clock = clock
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            session.max_redirects = MAX_REDIRECTS  # `_download` follows them; this is a backstop
        self._session = session
        self._headers = {
            "User-Agent": f"intercom-responder/{__version__}",
            "Accept": ", ".join(IMAGE_TYPES),
            "Accept-Encoding": "identity",  # Content-Length then is the size of the file
        }

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def fetch(self, url: str, *, name: str) -> Image | ImageProblem:
        """The image at `url`, or why not; never raises for a bad download."""
        try:
            image = self._download(url, name)
        except _DownloadError as problem:
            log.warning(
                "Attachment %r (%s) not given to the model: %s",
                one_line(name, 120),
                _loggable(url),
                problem.reason,
            )
            return ImageProblem(name, problem.reason)
        log.debug(
            "Attachment %r (%s): %s, %d bytes",
            one_line(name, 120),
            _loggable(url),
            image.media_type,
            len(image.data),
        )
        return image

    # --- one download ------------------------------------------------------------

    def _download(self, url: str, name: str) -> Image:
        deadline = self._clock() + self._timeout
        for _ in range(MAX_REDIRECTS + 1):
            response = self._get(url, deadline)
            with contextlib.closing(response):
                target = self._session.get_redirect_target(response)
                if target is None:
                    data = self._body(response, deadline)
                    return Image(name, _sniff(data), data)
            try:
                url = urljoin(response.url or url, target)
            except ValueError:
                raise _DownloadError("redirected to an invalid URL") from None
        raise _DownloadError(f"more than {MAX_REDIRECTS} redirects")

    def _get(self, url: str, deadline: float) -> requests.Response:
        try:
            parts = urlsplit(url)
            web = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        except ValueError:
            raise _DownloadError("not a valid URL") from None
        if not web:
            raise _DownloadError("not an http(s) URL")
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise _DownloadError(self._timed_out())
        try:
            # Prepared on its own, not by the session: no session headers, cookies or auth.
            request = requests.Request("GET", url, headers=self._headers, auth=_no_auth)
            prepared = request.prepare()
        except (requests.RequestException, ValueError):
            raise _DownloadError("not a valid URL") from None
        settings = self._session.merge_environment_settings(prepared.url, {}, True, None, None)
        wait = min(self._timeout, remaining)
        try:
            return self._session.send(
                prepared, allow_redirects=False, timeout=(wait, wait), **settings
            )
        except requests.Timeout:
            raise _DownloadError(self._timed_out()) from None
        except (requests.ConnectionError, OSError):
            raise _DownloadError("connection failed") from None
        except requests.RequestException as exc:
            raise _DownloadError(f"request failed ({type(exc).__name__})") from None

    def _body(self, response: requests.Response, deadline: float) -> bytes:
        if response.status_code != 200:
            raise _DownloadError(f"HTTP {response.status_code}")
        content_type = _media_type(response.headers.get("Content-Type"))
        if content_type not in _UNTYPED and not content_type.startswith("image/"):
            raise _DownloadError(f"not an image ({one_line(content_type, 60)})")
        too_big = f"over {_size(self._max_bytes)}"
        length = _content_length(response)
        if length is not None and length > self._max_bytes:
            raise _DownloadError(too_big)
        raw: Any = response.raw
        read = getattr(raw, "read1", None) or raw.read
        chunks: list[bytes] = []
        received = 0
        try:
            while True:
                # read1: whatever has arrived, so a trickling server meets the deadline
                chunk = read(CHUNK_BYTES, decode_content=True)
                if not chunk:
                    break
                received += len(chunk)
                if received > self._max_bytes:
                    raise _DownloadError(too_big)
                chunks.append(chunk)
                if self._clock() > deadline:
                    raise _DownloadError(self._timed_out())
        except (ReadTimeoutError, requests.Timeout):
            raise _DownloadError(self._timed_out()) from None
        except (Urllib3Error, requests.RequestException, OSError):
            raise _DownloadError("connection failed") from None
        return b"".join(chunks)

    def _timed_out(self) -> str:
        return f"timed out after {self._timeout:g} s"


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """An auth that adds nothing; stops requests from reading ~/.netrc for the host."""
    return request


def _sniff(data: bytes) -> str:
    """The media type the magic bytes say; `_DownloadError` when they name none we take."""
    if not data:
        raise _DownloadError("empty file")
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise _DownloadError(_NOT_AN_IMAGE_FILE)


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _size(limit: int) -> str:
    """`5 MB` for 5 MiB or 5,000,000 bytes; exact, else in bytes."""
    for scale, unit in ((1 << 20, "MB"), (1_000_000, "MB"), (1 << 10, "KB"), (1000, "KB")):
        if limit >= scale and limit % scale == 0:
            return f"{limit // scale} {unit}"
    return f"{limit} bytes"


def _loggable(url: str) -> str:
    """scheme://host/path: the query of an attachment URL is a signed token."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    host = parts.netloc.rpartition("@")[2]  # never user:password
    return one_line(f"{parts.scheme}://{host}{parts.path}", 200)
