"""Small, deterministic proofs for claims on deploy/servers, deploy/proxies
and files/uploads: gunicorn's and waitress's own request code run in-process
against a fake socket, and one loopback socket pair. No sleeps, no servers."""

import io
import socket
import threading
from types import SimpleNamespace

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi as gunicorn_wsgi
from gunicorn.http.parser import RequestParser
from waitress.adjustments import Adjustments
from waitress.parser import HTTPRequestParser
from waitress.task import WSGITask

from snippets.servers import app as probe_app


class FakeSocket:
    """Feeds gunicorn one request and records every sendall() it makes."""

    def __init__(self, request):
        self.incoming = io.BytesIO(request)
        self.sent = []

    def recv(self, size):
        return self.incoming.read(size)

    def sendall(self, data):
        self.sent.append(bytes(data))


def gunicorn_serve(app, version):
    """Serve one GET the way a gunicorn 27 worker does: its parser, its
    environ, its Response writing to the socket. Returns (environ, sendalls)."""
    cfg = Config()
    request = f"GET /stream?chunks=2&interval_ms=0 HTTP/{version}\r\nHost: x\r\n\r\n"
    sock = FakeSocket(request.encode())
    req = next(iter(RequestParser(cfg, sock, ("127.0.0.1", 1))))
    resp, environ = gunicorn_wsgi.create(
        req, sock, ("127.0.0.1", 1), ("127.0.0.1", 8000), cfg
    )
    body = app(environ, resp.start_response)
    try:
        for chunk in body:
            resp.write(chunk)
        resp.close()
    finally:
        body.close()
    return environ, sock.sent


def test_gunicorn_answers_http_1_0_without_chunked_framing():
    """What nginx gets from gunicorn when it proxies with HTTP/1.0: no
    Transfer-Encoding, no Content-Length; the body ends when the connection
    closes."""
    _, sent = gunicorn_serve(probe_app, "1.0")
    head, _, body = b"".join(sent).partition(b"\r\n\r\n")
    headers = head.decode().lower().split("\r\n")
    assert headers[0] == "http/1.0 200 ok"
    assert "connection: close" in headers
    assert not any(
        h.startswith(("transfer-encoding", "content-length")) for h in headers
    )
    assert [line.split()[0] for line in body.decode().splitlines()] == ["1", "2"]


def test_gunicorn_sends_each_chunk_of_a_chunked_body_in_one_sendall():
    """HTTP/1.1: chunked, and each chunk (size, data, CRLF) is one sendall()."""
    _, sent = gunicorn_serve(probe_app, "1.1")
    head, chunk1, chunk2, end = sent
    assert b"\r\ntransfer-encoding: chunked\r\n" in head.lower()
    for chunk, n in [(chunk1, b"1"), (chunk2, b"2")]:
        size, data, rest = chunk.split(b"\r\n")
        assert int(size, 16) == len(data) and data.startswith(n + b" ")
        assert rest == b""
    assert end == b"0\r\n\r\n"


def test_gunicorn_and_waitress_set_wsgi_input_terminated_for_every_request():
    """Even a GET without a body: Werkzeug may then read request.stream to its
    end, with MAX_CONTENT_LENGTH as the limit, when there is no Content-Length."""
    environ, _ = gunicorn_serve(probe_app, "1.1")
    assert "CONTENT_LENGTH" not in environ
    assert environ["wsgi.input_terminated"] is True

    adj = Adjustments()
    request = HTTPRequestParser(adj)
    request.received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert request.completed
    server = SimpleNamespace(adj=adj, effective_port=8080, server_name="x")
    channel = SimpleNamespace(
        addr=("127.0.0.1", 1), server=server, check_client_disconnected=bool
    )
    environ = WSGITask(channel, request).get_environment()
    assert "CONTENT_LENGTH" not in environ
    assert environ["wsgi.input_terminated"] is True


@pytest.mark.parametrize("attempt", range(20))
def test_first_write_after_the_client_closed_succeeds_and_the_next_fails(attempt):
    """Linux, loopback: the client's kernel answers the first write with a
    reset, so only the second write raises. A server notices a vanished client
    on its second write at the earliest."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        conn, _ = server.accept()
        with conn:
            client.close()
            conn.sendall(b": heartbeat 1\n\n")  # succeeds: nobody can tell yet
            with pytest.raises((BrokenPipeError, ConnectionResetError)):
                conn.sendall(b": heartbeat 2\n\n")


def test_werkzeug_server_writes_each_chunk_in_four_sends():
    """Werkzeug's threaded server (flask run) writes a chunk as four
    sendall() calls: the size, CRLF, the data, CRLF; gunicorn joins them
    into one sendall() (test above). So a piece is one send for gunicorn and
    four for Werkzeug: the number of pieces sets the number of writes."""
    from tests.servers import open_request, read_to_close, werkzeug_server

    sends, original = [], socket.socket.sendall

    def counting(self, data, *args):
        if threading.current_thread() is not threading.main_thread():
            sends.append(bytes(data))
        return original(self, data, *args)

    socket.socket.sendall = counting
    try:
        with werkzeug_server(probe_app) as url:
            target = "/stream?chunks=3&interval_ms=0"
            with open_request(url, target, headers=["Connection: close"]) as sock:
                read_to_close(sock)
    finally:
        socket.socket.sendall = original
    head = next(i for i, data in enumerate(sends) if data.endswith(b"\r\n\r\n"))
    body = sends[head + 1 :]
    assert len(body) == 3 * 4 + 1  # four sends per chunk, then the last chunk
    for size, crlf, data, end in zip(*[iter(body[:12])] * 4, strict=True):
        assert (int(size, 16), crlf, end) == (len(data), b"\r\n", b"\r\n")
    assert body[-1] == b"0\r\n\r\n"
