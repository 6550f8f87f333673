"""A chunked body (Transfer-Encoding: chunked, no Content-Length) on each
server of the matrix, with and without snippets/request_bodies.py's
ChunkedInput middleware; a multipart upload cut short leaves no file."""

import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest

from snippets import request_bodies
from tests.servers import serve, wait_until

pytestmark = pytest.mark.live

MiB = 1024 * 1024
SMALL = [b"hello ", b"chunked ", b"world"]  # 19 bytes: read whole by every server

# (kind, args, options): the target is appended to args.
SERVERS = {
    "werkzeug": ("werkzeug", (), {}),
    "gunicorn-sync": ("gunicorn", (), {"worker_class": "sync"}),
    "gunicorn-gthread": ("gunicorn", (), {"worker_class": "gthread"}),
    "waitress": ("waitress", (), {}),
    "uwsgi-http-socket": ("uwsgi", (), {}),
    "uwsgi-http-router": ("uwsgi", ("--http-chunked-input",), {"listen": "--http"}),
    "uvicorn-a2wsgi": ("uvicorn", (), {"bridge": "a2wsgi"}),
    "hypercorn": ("hypercorn", (), {}),
}
# Measured: these servers hand Flask an empty body when it is chunked.
EMPTY_WITHOUT_MIDDLEWARE = {"uwsgi-http-socket", "uwsgi-http-router"}
EMPTY_WITHOUT_MIDDLEWARE |= {"uvicorn-a2wsgi", "hypercorn"}


def start(name, attribute):
    kind, args, options = SERVERS[name]
    if kind == "werkzeug":
        return serve(kind, getattr(request_bodies, attribute))
    return serve(kind, f"snippets.request_bodies:{attribute}", *args, **options)


def post_chunked(url, path, chunks):
    """POST ``chunks`` with Transfer-Encoding: chunked (http.client sends an
    iterable body that way when there is no Content-Length)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(
            "POST",
            path,
            body=iter(chunks),
            headers={"Content-Type": "application/octet-stream"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("name", SERVERS)
def test_a_chunked_body_arrives_empty_where_the_server_does_not_set_input_terminated(
    name,
):
    """Without the middleware: Werkzeug's server, gunicorn (sync, gthread)
    and waitress set wsgi.input_terminated and the view reads all 19 bytes;
    uWSGI (its HTTP socket, and its router with --http-chunked-input),
    uvicorn behind a2wsgi and hypercorn do not, and Werkzeug gives the view
    an empty stream: 0 bytes, and no error."""
    with start(name, "plain_app") as server:
        status, body = post_chunked(server.url, "/size", SMALL)
    expected = 0 if name in EMPTY_WITHOUT_MIDDLEWARE else len(b"".join(SMALL))
    assert (status, json.loads(body)) == (200, {"bytes": expected})


@pytest.mark.parametrize("name", SERVERS)
def test_chunked_input_middleware_makes_a_chunked_body_readable(name):
    """With ChunkedInput, 4 MiB sent chunked in 64 KiB pieces arrive whole
    on every server of the matrix."""
    chunks = [b"x" * (64 * 1024)] * 64
    with start(name, "app") as server:
        status, body = post_chunked(server.url, "/size", chunks)
    assert (status, json.loads(body)) == (200, {"bytes": 4 * MiB})


BOUNDARY = "b0undary"
TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


def multipart_request(url, declared):
    """The head of a POST /uploads of one file part, up to its first byte,
    with ``declared`` as Content-Length (the whole body, head part included)."""
    part = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    head = (
        f"POST /uploads HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {declared(len(part))}\r\n\r\n"
    ).encode()
    return head + part


@pytest.mark.parametrize("name", ["werkzeug", "gunicorn-gthread", "gunicorn-sync"])
def test_a_multipart_upload_cut_short_leaves_no_file(name, tmp_path, monkeypatch):
    """3 MiB of a declared 10 MiB, then the client hangs up: the .part file
    the parser was writing is removed, and nothing is stored."""
    monkeypatch.setattr(request_bodies, "UPLOADS", tmp_path)  # werkzeug: in-thread
    monkeypatch.setenv("UPLOAD_DIR", str(tmp_path))  # the others: their env
    with start(name, "app") as server:
        parts = urlsplit(server.url)
        sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        sock.sendall(multipart_request(server.url, lambda part: 10 * MiB))
        for _ in range(48):
            sock.sendall(b"y" * (64 * 1024))
        # The parser has made its .part file and is writing into it.
        assert wait_until(lambda: list(tmp_path.glob(".*.part")), timeout=20)
        sock.close()
        assert wait_until(lambda: not list(tmp_path.iterdir()), timeout=20), list(
            tmp_path.iterdir()
        )
        # The server still works: the next upload is stored whole.
        sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        whole = multipart_request(server.url, lambda part: part + 2 + len(TAIL))
        sock.sendall(whole + b"ok" + TAIL)
        reply = b""
        while b"stored" not in reply and (data := sock.recv(65536)):
            reply += data
        sock.close()
        assert b"201" in reply.split(b"\r\n", 1)[0], reply
        assert (tmp_path / "big.bin").read_bytes() == b"ok"


def test_under_uwsgi_the_flag_alone_still_reads_nothing():
    """uWSGI's wsgi.input reads no chunked body: setting the flag without
    swapping in UwsgiChunks still gives the view 0 bytes."""
    with serve("uwsgi", "tests.files.uwsgi_flag_only:app") as server:
        status, body = post_chunked(server.url, "/size", SMALL)
    assert (status, json.loads(body)) == (200, {"bytes": 0})
