"""Proof for deploy/middleware: which hooks and middleware buffer a stream.

``first_chunk_before_last`` is the reusable check shown on the page; the live
tests prove the same over a real socket."""

import logging
import threading

import pytest
from flask import Flask, Response
from gunicorn.http.wsgi import FileWrapper as GunicornFileWrapper
from werkzeug.test import Client, EnvironBuilder

from snippets.middleware import (
    BodyLogger,
    ByteCounter,
    app,
    etag_everything,
    etag_when_buffered,
)
from tests.servers import open_request, read_until, werkzeug_server


# [checkpoint]
def first_chunk_before_last(install):
    """True if a client holds the first chunk before the last one exists.

    ``install(probe)`` adds the hook or middleware under test to a probe app
    whose generator records what it has produced.
    """
    produced = []
    probe = Flask("probe")

    @probe.get("/")
    def stream():
        def generate():
            produced.append("first")
            yield "first\n"
            produced.append("last")
            yield "last\n"

        return Response(generate(), mimetype="text/plain")

    install(probe)
    response = probe.test_client().get("/")
    first = next(iter(response.response))
    streamed = first == b"first\n" and produced == ["first"]
    response.close()
    return streamed


# [checkpoint-end]


def wrap(middleware):
    def install(probe):
        probe.wsgi_app = middleware(probe.wsgi_app)

    return install


def test_checkpoint_passes_with_nothing_installed():
    assert first_chunk_before_last(lambda probe: None)


def hook(function):
    def install(probe):
        probe.after_request(function)

    return install


def test_get_data_in_after_request_buffers():
    assert not first_chunk_before_last(hook(etag_everything))


def test_streaming_safe_hook_does_not_buffer():
    assert first_chunk_before_last(hook(etag_when_buffered))


def test_joining_middleware_buffers():
    assert not first_chunk_before_last(wrap(BodyLogger))


def test_lazy_middleware_does_not_buffer():
    assert first_chunk_before_last(wrap(ByteCounter))


def test_setting_content_length_in_a_hook_buffers():
    def set_length(response):
        response.content_length = len(response.get_data())
        return response

    assert not first_chunk_before_last(hook(set_length))


# --- the snippet's routes --------------------------------------------------------


@pytest.fixture
def client():
    return app.test_client()


def test_broken_hook_turns_a_stream_into_a_sized_body(client):
    response = client.get("/broken/feed")
    assert response.headers["Content-Length"] == "24"
    assert "ETag" in response.headers


def test_safe_hook_leaves_the_stream_alone(client):
    response = client.get("/safe/feed")
    assert "Content-Length" not in response.headers
    assert "ETag" not in response.headers
    assert response.get_data() == b"event 0\nevent 1\nevent 2\n"


def test_broken_hook_makes_send_file_a_500(client):
    assert client.get("/broken/file").status_code == 500


def test_safe_hook_serves_the_file(client):
    response = client.get("/safe/file")
    assert (response.status_code, response.data) == (200, b"file body\n")


@pytest.mark.parametrize("prefix", ["broken", "safe"])
def test_both_hooks_tag_a_buffered_body(client, prefix):
    response = client.get(f"/{prefix}/text")
    assert response.headers["ETag"] == client.get(f"/{prefix}/text").headers["ETag"]


def test_byte_counter_logs_the_size_when_the_server_closes(client, caplog):
    caplog.set_level(logging.INFO, logger="snippets.middleware")
    response = client.get("/safe/feed")
    assert response.get_data() == b"event 0\nevent 1\nevent 2\n"
    assert "/safe/feed: 24 bytes" not in caplog.text  # not before close()
    response.close()
    assert "/safe/feed: 24 bytes" in caplog.text


def test_byte_counter_passes_the_servers_file_wrapper_through():
    environ = EnvironBuilder(
        "/safe/file", environ_overrides={"wsgi.file_wrapper": GunicornFileWrapper}
    ).get_environ()
    body = app(environ, lambda status, headers: None)
    assert type(body) is GunicornFileWrapper  # so gunicorn can still sendfile
    body.close()


def close_counting_app():
    closed = []
    probe = Flask("probe")

    @probe.get("/")
    def stream():
        response = Response(iter([b"a", b"b"]))
        response.call_on_close(lambda: closed.append(True))
        return response

    return probe, closed


def test_joining_middleware_loses_close():
    probe, closed = close_counting_app()
    response = Client(BodyLogger(probe.wsgi_app)).get("/")
    assert response.get_data() == b"ab"
    response.close()
    assert closed == []  # call_on_close never ran


def test_lazy_middleware_keeps_close():
    probe, closed = close_counting_app()
    response = Client(ByteCounter(probe.wsgi_app)).get("/")
    assert response.get_data() == b"ab"
    response.close()
    assert closed == [True]


# --- over a real socket ------------------------------------------------------------


def gated_app(install):
    """A stream whose last chunk waits for the client to hold the first."""
    client_has_first = threading.Event()
    probe = Flask("gated")

    @probe.get("/")
    def stream():
        def generate():
            yield "first\n"
            client_has_first.wait(timeout=20)
            yield "last\n"

        return Response(generate(), mimetype="text/plain")

    install(probe)
    return probe, client_has_first


@pytest.mark.live
def test_safe_hook_streams_over_a_socket(live_server):
    probe, client_has_first = gated_app(hook(etag_when_buffered))
    with open_request(live_server(probe), "/", headers=["Connection: close"]) as sock:
        head = read_until(sock, b"first\n")  # would time out if buffered
        client_has_first.set()
        rest = read_until(sock, b"0\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert b"last\n" in rest


@pytest.mark.live
@pytest.mark.parametrize(
    ("install", "one_piece"),
    [
        # The hook's body became a list: Content-Length, no chunking.
        (hook(etag_everything), b"Content-Length: 11\r\n"),
        # The middleware returns one joined item: one chunk of 0xb bytes.
        (wrap(BodyLogger), b"\r\n\r\nb\r\nfirst\nlast\n"),
    ],
    ids=["get_data-hook", "joining-middleware"],
)
def test_broken_one_buffers_over_a_socket(live_server, install, one_piece):
    """Nothing at all arrives while the generator waits: not even the status
    line. Released, the whole body comes at once."""
    probe, client_has_first = gated_app(install)
    with open_request(live_server(probe), "/", headers=["Connection: close"]) as sock:
        sock.settimeout(1.5)
        with pytest.raises(TimeoutError):
            sock.recv(65536)
        client_has_first.set()
        sock.settimeout(10)
        data = read_until(sock, b"last\n")
    assert one_piece in data


def test_a_stream_with_a_known_length_is_sent_with_it_unchunked():
    """When the size is known before the first byte, a stream may carry
    ``Content-Length``: Werkzeug's server sends that header, does not chunk,
    and the first part arrives before the generator makes the last."""
    probe = Flask(__name__)
    made_last = threading.Event()
    first_seen = threading.Event()

    @probe.get("/sized")
    def sized():
        def generate():
            yield b"first\n"
            first_seen.wait(timeout=10)  # the client holds part one by now
            made_last.set()
            yield b"last!\n"

        return Response(generate(), headers={"Content-Length": "12"})

    with werkzeug_server(probe) as url:
        sock = open_request(url, "/sized")
        try:
            head = read_until(sock, b"first\n")
            last_existed = made_last.is_set()
            first_seen.set()
            rest = read_until(sock, b"last!\n", head)
        finally:
            sock.close()
    status_and_headers, _, body = rest.partition(b"\r\n\r\n")
    headers = status_and_headers.lower()
    assert b"content-length: 12" in headers
    assert b"transfer-encoding" not in headers
    assert body == b"first\nlast!\n"
    assert not last_existed
