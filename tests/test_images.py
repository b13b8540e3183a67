"""ImageFetcher against a real (loopback) file server: types, limits, timeouts, redirects."""

from __future__ import annotations

import base64
import logging
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3.response
from openapi_core import OpenAPI

from intercom_responder.adapters.images import (
    CHUNK_BYTES,
    IMAGE_TYPES,
    Image,
    ImageFetcher,
    ImageProblem,
)
from intercom_responder.core.conversation import Conversation
from tests.fakes.files import FakeFiles
from tests.fakes.intercom import FakeIntercom, attachment, load_spec
from tests.test_fake_intercom import TOKEN, assert_matches_spec


def _png() -> bytes:
    """A real 1 x 1 PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


PNG = _png()
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
GIF += b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
WEBP = b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8L" + struct.pack("<I", 18) + b"\x2f" + b"\0" * 17
LIMIT = 64 * 1024


@pytest.fixture
def files() -> Iterator[FakeFiles]:
    with FakeFiles() as server:
        yield server


@pytest.fixture
def fetcher() -> Iterator[ImageFetcher]:
    images = ImageFetcher(max_bytes=LIMIT, timeout=2.0)
    yield images
    images.close()


def _problem(result: Image | ImageProblem) -> str:
    assert isinstance(result, ImageProblem), result
    return result.reason


@pytest.mark.parametrize(
    ("data", "media_type"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (GIF, "image/gif"), (WEBP, "image/webp")],
)
def test_each_image_type_is_fetched_as_a_data_url(
    files: FakeFiles, fetcher: ImageFetcher, data: bytes, media_type: str
) -> None:
    # the header is deliberately vague: the magic bytes decide the type
    url = files.add("/file", data, "application/octet-stream")
    image = fetcher.fetch(url, name="screenshot")
    assert image == Image("screenshot", media_type, data)
    assert media_type in IMAGE_TYPES
    prefix = f"data:{media_type};base64,"
    assert image.data_url().startswith(prefix)
    assert base64.b64decode(image.data_url()[len(prefix) :]) == data
    assert files.requests == ["/file"]


def test_the_bytes_decide_the_type_not_the_header(files: FakeFiles, fetcher: ImageFetcher) -> None:
    image = fetcher.fetch(files.add("/a.jpg", PNG, "image/jpeg"), name="a.jpg")
    assert isinstance(image, Image) and image.media_type == "image/png"
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"/>'
    result = fetcher.fetch(files.add("/b.svg", svg, "image/svg+xml"), name="b.svg")
    assert _problem(result) == "not a png, jpeg, gif or webp image"
    assert _problem(fetcher.fetch(files.add("/empty", b"", "image/png"), name="e")) == (
        "empty file"
    )


def test_a_file_over_the_limit_is_refused_by_its_content_length_before_reading(
    files: FakeFiles, fetcher: ImageFetcher
) -> None:
    # The server announces 10 MB and then trickles: reading any of it would take seconds.
    url = files.add("/big.png", PNG, "image/png", content_length=10_000_000, trickle=True)
    started = time.monotonic()
    assert _problem(fetcher.fetch(url, name="big.png")) == "over 64 KB"
    assert time.monotonic() - started < 1.0
    honest = files.add("/honest.png", PNG + b"\0" * LIMIT, "image/png")
    assert _problem(fetcher.fetch(honest, name="honest.png")) == "over 64 KB"


def test_without_content_length_reading_stops_after_max_bytes(
    files: FakeFiles, fetcher: ImageFetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[int] = []
    real_read1 = urllib3.response.HTTPResponse.read1

    def counting_read1(self: urllib3.response.HTTPResponse, *args: Any, **kwargs: Any) -> bytes:
        data = real_read1(self, *args, **kwargs)
        read.append(len(data))
        return data

    monkeypatch.setattr(urllib3.response.HTTPResponse, "read1", counting_read1)
    url = files.add("/huge.png", PNG + b"\0" * (40 * LIMIT), "image/png", chunked=True)
    assert _problem(fetcher.fetch(url, name="huge.png")) == "over 64 KB"
    assert LIMIT < sum(read) <= LIMIT + CHUNK_BYTES

    # exactly at the limit is fine
    read.clear()
    exact = files.add("/exact.png", PNG + b"\0" * (LIMIT - len(PNG)), "image/png", chunked=True)
    image = fetcher.fetch(exact, name="exact.png")
    assert isinstance(image, Image) and len(image.data) == LIMIT


def test_a_lying_content_length_never_gets_more_read_than_it_says(
    files: FakeFiles, fetcher: ImageFetcher
) -> None:
    url = files.add("/liar.png", PNG + b"\0" * (4 * LIMIT), "image/png", content_length=1000)
    image = fetcher.fetch(url, name="liar.png")
    assert isinstance(image, Image) and len(image.data) == 1000
    # and one announcing more than it sends is a broken download, not a truncated image
    short = files.add("/short.png", PNG, "image/png", content_length=5000)
    assert _problem(fetcher.fetch(short, name="short.png")) == "connection failed"


def test_a_trickling_server_is_cut_off_at_the_deadline(files: FakeFiles) -> None:
    fetcher = ImageFetcher(max_bytes=LIMIT, timeout=1.0)
    url = files.add("/slow.png", PNG, "image/png", trickle=True)
    started = time.monotonic()
    assert _problem(fetcher.fetch(url, name="slow.png")) == "timed out after 1 s"
    assert 0.9 <= time.monotonic() - started < 1.8


def test_a_server_that_does_not_answer_times_out(files: FakeFiles) -> None:
    fetcher = ImageFetcher(max_bytes=LIMIT, timeout=0.5)
    url = files.add("/late.png", PNG, "image/png", delay=5)
    started = time.monotonic()
    assert _problem(fetcher.fetch(url, name="late.png")) == "timed out after 0.5 s"
    assert time.monotonic() - started < 1.5


def test_http_errors_and_unreachable_hosts(files: FakeFiles, fetcher: ImageFetcher) -> None:
    missing = files.add("/x.png", PNG, "image/png").replace("/x.png", "/nothing.png")
    assert _problem(fetcher.fetch(missing, name="nothing.png")) == "HTTP 404"
    gone = files.add("/gone.png", b"gone", "text/plain", status=410)
    assert _problem(fetcher.fetch(gone, name="gone.png")) == "HTTP 410"

    with FakeFiles() as closed:
        url = closed.add("/a.png", PNG, "image/png")
    assert _problem(fetcher.fetch(url, name="a.png")) == "connection failed"


def test_html_served_as_a_png_is_not_an_image(files: FakeFiles, fetcher: ImageFetcher) -> None:
    url = files.add("/image.png", b"<html>login</html>", "text/html; charset=utf-8")
    assert _problem(fetcher.fetch(url, name="image.png")) == "not an image (text/html)"


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.png",
        "data:image/png;base64,iVBORw0KGgo=",
        "/relative/a.png",
        "http:///no-host.png",
    ],
)
def test_only_http_and_https_urls_are_fetched(fetcher: ImageFetcher, url: str) -> None:
    assert fetcher.fetch(url, name="a.png") == ImageProblem("a.png", "not an http(s) URL")


def test_redirects_up_to_three_are_followed(files: FakeFiles, fetcher: ImageFetcher) -> None:
    target = files.add("/final.png", PNG, "image/png")
    one = files.add("/r1", b"", "text/plain", redirect_to=target)
    image = fetcher.fetch(one, name="final.png")
    assert isinstance(image, Image) and image.data == PNG
    assert files.requests == ["/r1", "/final.png"]

    # relative Locations are resolved; three hops are still fine, four are not
    hops = [target]  # hops[n]: n redirects away from the file
    for hop in range(4, 0, -1):
        hops.append(files.add(f"/hop{hop}", b"", "text/plain", status=307, redirect_to=hops[-1]))
    assert isinstance(fetcher.fetch(hops[3], name="final.png"), Image)
    chain = hops[4]
    files.requests.clear()
    assert _problem(fetcher.fetch(chain, name="final.png")) == "more than 3 redirects"
    assert files.requests == ["/hop1", "/hop2", "/hop3", "/hop4"]

    relative = files.add("/rel", b"", "text/plain", redirect_to="/final.png")
    assert isinstance(fetcher.fetch(relative, name="final.png"), Image)


@pytest.mark.parametrize("url", ["http://[::1", "http://exa mple.test/a.png", "http://h:99999/"])
def test_a_malformed_url_is_a_problem_not_an_exception(fetcher: ImageFetcher, url: str) -> None:
    assert fetcher.fetch(url, name="a.png") == ImageProblem("a.png", "not a valid URL")


def test_a_redirect_away_from_http_is_refused(files: FakeFiles, fetcher: ImageFetcher) -> None:
    url = files.add("/sneaky", b"", "text/plain", redirect_to="file:///etc/passwd")
    assert _problem(fetcher.fetch(url, name="a.png")) == "not an http(s) URL"


def test_no_cookies_or_credentials_are_sent(
    files: FakeFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    session = requests.Session()
    session.headers["Authorization"] = "Bearer intercom-token"
    session.cookies.set("session", "abc")
    fetcher = ImageFetcher(max_bytes=LIMIT, timeout=2.0, session=session)
    first = files.add("/a.png", PNG, "image/png", headers={"Set-Cookie": "track=1; Path=/"})
    second = files.add("/b.png", PNG, "image/png")
    with_userinfo = second.replace("http://", "http://user:pw@")
    for url in (first, second, with_userinfo):
        assert isinstance(fetcher.fetch(url, name="a.png"), Image)
    assert len(files.request_headers) == 3
    for headers in files.request_headers:
        names = {name.lower() for name in headers}
        assert not names & {"authorization", "cookie", "proxy-authorization"}, headers
        assert headers["User-Agent"].startswith("intercom-responder/")


def test_problems_are_logged_without_the_signed_query(
    files: FakeFiles, fetcher: ImageFetcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="intercom_responder.adapters.images")
    urls = [
        files.add("/html.png", b"<html/>", "text/html"),
        files.add("/nothing.png", PNG, "image/png").replace("/nothing.png", "/404.png"),
        files.add("/ok.png", PNG, "image/png"),
        files.add(
            "/redirect", b"", "text/plain", redirect_to=files.add("/html2", b"", "text/html")
        ),
    ]
    for url in urls:
        fetcher.fetch(url, name="shot.png")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert all("shot.png" in r.getMessage() for r in warnings)
    assert f"{files.base_url}/html.png" in warnings[0].getMessage()
    assert "not an image (text/html)" in warnings[0].getMessage()
    assert "signature=" not in caplog.text
    assert all("signature" not in r.getMessage() for r in caplog.records)


# --- attachments on the fake Intercom's parts ----------------------------------------


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    return load_spec()


def test_the_fake_intercom_renders_attachments_that_conversation_reads(
    spec: OpenAPI, files: FakeFiles, fetcher: ImageFetcher
) -> None:
    url = files.add("/screenshot.png", PNG, "image/png")
    shot = attachment(url, "screenshot.png", "image/png", filesize=len(PNG), width=1, height=1)
    assert shot == {
        "type": "upload",
        "name": "screenshot.png",
        "url": url,
        "content_type": "image/png",
        "filesize": len(PNG),
        "width": 1,
        "height": 1,
    }
    invoice = attachment("https://files.example.test/i.pdf", "invoice.pdf", "application/pdf")
    assert "width" not in invoice and "height" not in invoice
    with FakeIntercom(TOKEN) as intercom:
        conv_id = intercom.create_conversation("<p>Hello</p>", attachments=[invoice])
        intercom.customer_writes(conv_id, "<p>It looks like this</p>", attachments=[shot])
        intercom.customer_writes(conv_id, "", attachments=[shot])  # only a file
        intercom.customer_writes(conv_id, "<p>No file</p>")
        response = requests.get(
            f"{intercom.base_url}/conversations/{conv_id}",
            headers={"Authorization": f"Bearer {TOKEN}", "Intercom-Version": "2.16"},
            timeout=5,
        )
    assert response.status_code == 200, response.text
    assert_matches_spec(spec, response)
    data = response.json()
    assert data["source"]["attachments"] == [invoice]
    parts = data["conversation_parts"]["conversation_parts"]
    assert [p["attachments"] for p in parts] == [[shot], [shot], []]

    conversation = Conversation.from_api(data)
    texts = [m.text for m in conversation.messages]
    assert texts == [
        "Hello\n[attachment: invoice.pdf]",
        "It looks like this\n[attachment: screenshot.png]",
        "[attachment: screenshot.png]",
        "No file",
    ]
    # and the URL the part carries is one the fetcher downloads
    image = fetcher.fetch(parts[0]["attachments"][0]["url"], name="screenshot.png")
    assert isinstance(image, Image) and image.data == PNG
