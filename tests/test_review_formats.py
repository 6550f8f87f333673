"""Claims on the formats pages that need a test of their own (in-process)."""

import io
import struct
import zipfile

import httpx
import pytest
from flask import request
from httpx_sse import SSEError, connect_sse
from werkzeug.exceptions import RequestEntityTooLarge

from snippets.token_stream import app as token_app
from snippets.zip_download import build_zip


def test_httpx_sse_refuses_a_stream_without_the_event_stream_type():
    """httpx-sse 0.4.3 checks the media type before it parses anything."""
    reply = httpx.Response(
        200, headers={"Content-Type": "text/plain"}, text="data: x\n\n"
    )
    transport = httpx.MockTransport(lambda request: reply)
    with (
        httpx.Client(transport=transport) as http,
        connect_sse(http, "GET", "http://example.test/") as source,
        pytest.raises(SSEError, match="text/event-stream"),
    ):
        list(source.iter_sse())


def test_max_content_length_is_a_413_when_the_view_reads_the_body():
    """Not before the view: the request exists, and reading it raises."""
    big = {"data": "x" * 70_000, "content_type": "application/json"}
    with (
        token_app.test_request_context("/generate", method="POST", **big),
        pytest.raises(RequestEntityTooLarge),
    ):
        request.get_json(silent=True)  # silent does not hide a 413
    response = token_app.test_client().post("/generate", **big)
    assert response.status_code == 413
    assert response.json == {"error": RequestEntityTooLarge.description}


def test_generated_zip_member_has_a_zip64_local_header():
    """zipstream-ng cannot know a generated member's size when it writes the
    header, so the local header carries a ZIP64 extra field (id 0x0001)."""
    body = b"".join(build_zip(generated=[("a.txt", iter([b"tiny"]))]))
    assert body[:4] == b"PK\x03\x04"
    name_length, extra_length = struct.unpack("<HH", body[26:30])
    extra = body[30 + name_length : 30 + name_length + extra_length]
    assert struct.unpack("<H", extra[:2])[0] == 0x0001
    assert zipfile.ZipFile(io.BytesIO(body)).read("a.txt") == b"tiny"


class WriteOnly(io.RawIOBase):
    """A stream that cannot seek or tell, like a socket."""

    def __init__(self):
        self.writes = []

    def writable(self):
        return True

    def write(self, data):
        self.writes.append(bytes(data))
        return len(data)


def test_zipfile_writes_to_an_unseekable_stream():
    out = WriteOnly()
    assert not out.seekable()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", "hello")
    assert len(out.writes) > 1  # many writes, not one iterator of chunks
    body = b"".join(out.writes)
    assert zipfile.ZipFile(io.BytesIO(body)).read("a.txt") == b"hello"
