"""nginx in front of gunicorn: what holds a stream back, and what lets it
through. Proof for deploy/proxies.

Every line of ``snippets/servers.py`` and every event of
``snippets/proxies.py`` says when it was made; the client notes when it
arrived. "Streams" means the first one arrived before the last one was made.
"""

import contextlib
import json
import os
import queue
import re
import socket
import threading
import time
import zlib

import pytest

from tests.deploy_matrix import RawStream
from tests.servers import gunicorn, nginx, open_request

pytestmark = [pytest.mark.live, pytest.mark.nginx]

MADE = re.compile(r'^\d+ (\d+\.\d+)$|"sent": (\d+\.\d+)', re.M)
PROBE = "/probe/stream?chunks=3&interval_ms=300"
EVENTS = "/events?count=3&interval_ms=300&heartbeat_ms=0"
GZIP = "gzip on; gzip_types text/plain text/event-stream;"


@pytest.fixture(scope="module")
def upstreams():
    """The probe (no streaming headers) and proxy_headers, on gunicorn gthread."""
    # A stream nginx gave up on still holds a thread until its next write.
    options = {"worker_class": "gthread", "args": ("--threads", "8")}
    with (
        gunicorn("snippets.servers:app", **options) as (probe, _),
        gunicorn("snippets.proxies:app", **options) as (app, _),
    ):
        yield probe, app


@pytest.fixture
def proxy(upstreams):
    """Start nginx with ``settings`` in both locations; returns its URL."""
    probe, app = upstreams
    with contextlib.ExitStack() as stack:

        def start(settings=""):
            block = f"""
                location /probe/ {{ proxy_pass {probe}/; {settings} }}
                location / {{ proxy_pass {app}; {settings} }}
            """
            return stack.enter_context(nginx(block))

        yield start


def timeline(url, path, headers=None, *, gzip=False):
    """[(text, arrival time)] per piece received, and whether the body ended
    properly. With ``gzip``, every piece must decompress on its own arrival."""
    with RawStream(url, path, headers) as stream:
        inflate = zlib.decompressobj(wbits=31)
        pieces = []
        for data, arrived in stream.pieces():
            text = (inflate.decompress(data) if gzip else data).decode()
            pieces.append((text, arrived))
        if gzip:
            assert stream.headers["content-encoding"] == "gzip"
            assert inflate.eof, "the gzip stream has no trailer"
        return pieces, stream


def made_times(text):
    return [float(a or b) for a, b in MADE.findall(text)]


def lines_per_piece(pieces):
    """How many made lines (or events) each piece carried, empty ones left out
    (the gzip trailer may come alone or with the last event)."""
    return [n for text, _ in pieces if (n := len(made_times(text)))]


def streams(pieces):
    """True if the first piece arrived before the last line was made."""
    last_made = max(made_times("".join(text for text, _ in pieces)))
    first_arrived = next(arrived for text, arrived in pieces if made_times(text))
    return first_arrived < last_made


def test_gunicorn_alone_streams(upstreams):
    """The control: without nginx, the probe streams."""
    probe, _ = upstreams
    pieces, _ = timeline(probe, "/stream?chunks=3&interval_ms=300")
    assert streams(pieces)


def test_nginx_buffers_by_default(proxy):
    """Default proxy_buffering on, a response smaller than the buffers: the
    client gets nothing until the generator has made its last line."""
    pieces, stream = timeline(proxy(), PROBE)
    assert stream.complete
    assert len(made_times(pieces[0][0])) == 3  # all three lines, in one piece
    assert not streams(pieces)


def test_chunked_upstream_can_pass_through_default_buffering(proxy):
    """With buffering still on, nginx 1.22 *can* pass a chunked upstream body
    on before it ends (it asks gunicorn in HTTP/1.0 unless told otherwise, and
    gunicorn then answers unchunked: that body always waits). It is not
    guaranteed: a chunk is sometimes held until the next one, so this asks
    only that one of five streams comes through early."""
    url = proxy("proxy_http_version 1.1;")
    results = []
    for _ in range(5):
        pieces, stream = timeline(url, PROBE)
        assert stream.complete
        results.append(streams(pieces))
        if results[-1]:
            break
    assert any(results), results


def test_x_accel_buffering_header_streams_through_default_nginx(proxy):
    pieces, stream = timeline(proxy(), EVENTS)
    assert stream.headers.get("x-accel-buffering") is None  # nginx eats it
    assert lines_per_piece(pieces) == [1, 1, 1]
    assert streams(pieces)


def test_proxy_buffering_off_streams(proxy):
    pieces, _ = timeline(proxy("proxy_buffering off;"), PROBE)
    assert lines_per_piece(pieces) == [1, 1, 1]
    assert streams(pieces)


def test_nginx_gzip_with_buffering_on_arrives_at_the_end(proxy):
    pieces, _ = timeline(proxy(GZIP), PROBE, {"Accept-Encoding": "gzip"}, gzip=True)
    assert not streams(pieces)


def test_nginx_gzip_with_buffering_off_flushes_each_chunk(proxy):
    """nginx 1.22's gzip flushes what it has each time the unbuffered upstream
    delivers: every piece decompresses on arrival, before the next is made."""
    url = proxy(GZIP + " proxy_buffering off;")
    pieces, _ = timeline(url, PROBE, {"Accept-Encoding": "gzip"}, gzip=True)
    assert lines_per_piece(pieces) == [1, 1, 1]
    assert streams(pieces)


def test_nginx_gzip_with_x_accel_buffering_flushes_each_event(proxy):
    """The app sends plain events with X-Accel-Buffering: no (nginx strips
    Accept-Encoding on the way up), nginx compresses: still streams."""
    url = proxy(GZIP + ' proxy_set_header Accept-Encoding "";')
    pieces, _ = timeline(url, EVENTS, {"Accept-Encoding": "gzip"}, gzip=True)
    assert lines_per_piece(pieces) == [1, 1, 1]
    assert streams(pieces)


def test_app_gzip_streams_through_nginx(proxy):
    """gzip done in the app with Z_SYNC_FLUSH: nginx passes it on untouched,
    each event decompresses on arrival, the whole body decompresses."""
    pieces, stream = timeline(proxy(), EVENTS, {"Accept-Encoding": "gzip"}, gzip=True)
    assert stream.complete
    events = [text for text, _ in pieces if made_times(text)]
    assert lines_per_piece(pieces) == [1, 1, 1]
    assert [json.loads(e.split("data: ")[1])["n"] for e in events] == [1, 2, 3]
    assert streams(pieces)


def test_proxy_read_timeout_cuts_a_silent_stream(proxy):
    """2.5 s of silence against proxy_read_timeout 1s: nginx gives up on the
    upstream and ends the client's body without its last chunk."""
    url = proxy("proxy_read_timeout 1s;")
    path = "/events?count=2&interval_ms=2500&heartbeat_ms=0"
    pieces, stream = timeline(url, path)
    assert stream.status == "HTTP/1.1 200 OK"  # the status was already sent
    assert "".join(text for text, _ in pieces).count("data: ") == 1
    assert not stream.complete


def test_heartbeat_comments_keep_the_stream_through_proxy_read_timeout(proxy):
    url = proxy("proxy_read_timeout 1s;")
    path = "/events?count=2&interval_ms=2500&heartbeat_ms=300"
    pieces, stream = timeline(url, path)
    body = "".join(text for text, _ in pieces)
    assert stream.status == "HTTP/1.1 200 OK"
    assert stream.complete
    assert body.count("data: ") == 2
    assert body.count(": keep-alive\n\n") >= 3


# --- the rule: whole buffers pass, the rest waits -----------------------------------

UPSTREAM_HEAD = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n"


@contextlib.contextmanager
def scripted_upstream():
    """An upstream that answers like gunicorn answers nginx's HTTP/1.0
    request (no Content-Length, no chunks: the body runs until close) and
    sends each piece the test hands it, when the test hands it."""
    pieces = queue.Queue()
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(UPSTREAM_HEAD)
            while (piece := pieces.get()) is not None:
                conn.sendall(piece)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", pieces.put
    finally:
        pieces.put(None)
        thread.join(timeout=10)
        listener.close()


def payload_received(sock, buffer, *, at_least, settle=0.3):
    """Read the chunked body until it holds ``at_least`` payload bytes, then
    until nothing more comes for ``settle`` seconds; return (payload, raw)."""

    def payload(raw):
        body, total = raw.partition(b"\r\n\r\n")[2], 0
        while (line := body.partition(b"\r\n"))[1]:
            size = int(line[0], 16)
            if len(line[2]) < size + 2:
                break
            total, body = total + size, line[2][size + 2 :]
        return total

    deadline = time.monotonic() + 20
    while payload(buffer) < at_least and time.monotonic() < deadline:
        sock.settimeout(deadline - time.monotonic())
        buffer += sock.recv(65536)
    sock.settimeout(settle)
    with contextlib.suppress(TimeoutError):
        while data := sock.recv(65536):
            buffer += data
    return payload(buffer), buffer


def test_nginx_passes_whole_buffers_and_holds_what_does_not_fill_one():
    """nginx with its defaults (proxy_buffering on, buffers of one memory
    page): of an unframed upstream body it passes on whole buffers, as soon
    as each is full, and holds only the bytes that do not fill one. The first
    buffer also holds the upstream's status line and headers. So 7,000-byte
    pieces arrive as they are sent, in 4 KiB steps, while 1,000-byte pieces
    wait until four or five of them fill a buffer."""
    page = os.sysconf("SC_PAGE_SIZE")  # nginx's default buffer size (4 KiB here)
    head = len(UPSTREAM_HEAD)

    def passed(sent):  # whole buffers, the first one shared with the headers
        return (sent + head) // page * page - head

    seen = []
    with (
        scripted_upstream() as (upstream, send),
        nginx(f"location / {{ proxy_pass {upstream}; }}") as url,
        open_request(url, "/", headers=["Connection: close"]) as sock,
    ):
        sent, raw = 0, b""
        for size in [7000] * 4 + [1000] * 6:
            send(b"x" * size)
            sent += size
            got, raw = payload_received(sock, raw, at_least=passed(sent))
            seen.append((size, sent, got))
    print(seen)
    assert page == 4096
    assert [got for _, _, got in seen] == [passed(sent) for _, sent, _ in seen]
    assert seen[0][2] == 4096 - head  # the first 7,000 bytes: one buffer passes
    held = [got for size, _, got in seen if size == 1000]
    assert held == [7 * page - head] * 4 + [8 * page - head] * 2
