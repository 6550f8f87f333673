"""Over a real socket, Werkzeug's server streams: proof for basics/responses."""

import socket
import threading
from urllib.parse import urlsplit

from flask import Flask, Response

from snippets.responses import app as hello_app
from tests.servers import open_request, read_to_close


def raw_get(url, path):
    """Send a bare HTTP/1.1 GET; return the socket and a reader over it."""
    sock = open_request(url, path)
    return sock, sock.makefile("rb")


def read_head(reader):
    status = reader.readline().decode().strip()
    headers = {}
    while (line := reader.readline()) != b"\r\n":
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def read_chunk(reader):
    size = int(reader.readline().strip(), 16)
    data = reader.read(size)
    assert reader.read(2) == b"\r\n"
    return data


def test_each_yield_is_one_chunk_on_the_wire(live_server):
    url = live_server(hello_app)
    sock, reader = raw_get(url, "/count?n=2")
    with sock, reader:
        status, headers = read_head(reader)
        body = reader.read()
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["transfer-encoding"] == "chunked"
    assert headers["connection"] == "close"  # as the page shows
    assert "content-length" not in headers
    assert body == b"7\r\nline 1\n\r\n7\r\nline 2\n\r\n0\r\n\r\n"


def test_empty_yield_writes_no_chunk(live_server):
    url = live_server(hello_app)
    sock, reader = raw_get(url, "/bytes")
    with sock, reader:
        read_head(reader)
        body = reader.read()
    assert body == b"4\r\n\x89PNG\r\n2\r\n\xc3\xa9\r\n0\r\n\r\n"


def test_first_chunk_arrives_before_generator_finishes(live_server):
    """A checkpoint, not a sleep: the generator waits for the client's signal
    before producing its last chunk; if the server buffered, the first chunk
    could never arrive and the wait would time out."""
    client_has_first_chunk = threading.Event()
    produced = []
    app = Flask(__name__)

    @app.get("/")
    def gated():
        def generate():
            produced.append("first")
            yield "first\n"
            assert client_has_first_chunk.wait(timeout=10), "client saw nothing"
            produced.append("last")
            yield "last\n"

        return Response(generate(), mimetype="text/plain")

    sock, reader = raw_get(live_server(app), "/")
    with sock, reader:
        status, headers = read_head(reader)
        assert status == "HTTP/1.1 200 OK"
        assert headers["transfer-encoding"] == "chunked"
        assert read_chunk(reader) == b"first\n"
        assert produced == ["first"]  # the last chunk does not exist yet
        client_has_first_chunk.set()
        assert read_chunk(reader) == b"last\n"
        assert read_chunk(reader) == b""  # the terminating 0-length chunk
    assert produced == ["first", "last"]


def test_not_threaded_server_streams_without_chunking(live_server):
    """threaded=False keeps HTTP/1.0: no chunked framing, the body ends when
    the connection closes, but it is still written as it is produced."""
    url = live_server(hello_app, threaded=False)
    sock, reader = raw_get(url, "/count?n=2")
    with sock, reader:
        status, headers = read_head(reader)
        body = reader.read()
    assert status.startswith("HTTP/1.0 200")
    assert "transfer-encoding" not in headers
    assert body == b"line 1\nline 2\n"


def test_threaded_dev_server_chunks_even_an_http_1_0_request(live_server):
    """Werkzeug 3.1.9 decides on chunking from its own protocol version, not
    the client's: an HTTP/1.0 request (what nginx sends upstream by default)
    still gets a chunked body from the threaded server."""
    parts = urlsplit(live_server(hello_app))
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(b"GET /count?n=2 HTTP/1.0\r\nHost: x\r\n\r\n")
        head, _, body = read_to_close(sock).partition(b"\r\n\r\n")
    assert b"\r\nTransfer-Encoding: chunked" in head
    assert body == b"7\r\nline 1\n\r\n7\r\nline 2\n\r\n0\r\n\r\n"
