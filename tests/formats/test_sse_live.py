"""SSE and token streams over real sockets: when headers leave, when the
server notices a client has gone, and what nginx does with an event stream."""

import logging
import threading
import time
from urllib.parse import urlsplit

import pytest
from flask import Flask, Response

from snippets import tokens as token_stream
from snippets.sse import app as sse_app
from tests.servers import nginx, open_request, read_until, wait_until

pytestmark = pytest.mark.live


def test_headers_wait_for_the_first_yield(live_server):
    """Werkzeug sends the status line with the first item the generator
    yields: until then the client has nothing at all, not even a 200."""
    may_start = threading.Event()
    app = Flask(__name__)

    @app.get("/")
    def slow_start():
        def generate():
            assert may_start.wait(timeout=10)
            yield "data: first\n\n"

        return Response(generate(), mimetype="text/event-stream")

    with open_request(live_server(app), "/") as sock:
        sock.settimeout(1.0)  # a bounded wait to show a negative
        with pytest.raises(TimeoutError):
            sock.recv(1)
        may_start.set()
        sock.settimeout(10)
        received = read_until(sock, b"data: first")
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")


def test_stream_stops_after_client_disconnects(live_server, caplog):
    """The client reads two events and hangs up; the next writes fail and
    the generator's finally runs within a few event intervals."""
    caplog.set_level(logging.INFO, logger=sse_app.logger.name)
    url = live_server(sse_app)
    sock = open_request(url, "/events?every=100")
    with sock:
        read_until(sock, b"id: 2\n")
        hung_up = time.monotonic()
    assert wait_until(lambda: any("stream closed" in m for m in caplog.messages), 15)
    noticed = time.monotonic() - hung_up
    (message,) = [m for m in caplog.messages if "stream closed" in m]
    last_event = int(message.rsplit(" ", 1)[1])
    print(f"noticed after {noticed:.3f} s, last event {last_event}")
    assert 2 <= last_event <= 5  # at most three writes into a closed socket
    assert noticed < 5


NGINX_PROXY = "location / {{ proxy_pass http://127.0.0.1:{port}; }}"


@pytest.mark.nginx
def test_events_pass_through_nginx_one_by_one(live_server):
    """The snippet's X-Accel-Buffering: no turns nginx's buffering off for
    this response: with nginx's defaults otherwise, the first event reaches
    the client on its own, a second before the stream ends, and nginx
    consumes the header."""
    port = urlsplit(live_server(sse_app)).port
    with (
        nginx(NGINX_PROXY.format(port=port)) as proxy,
        open_request(proxy, "/events?limit=2&every=1000") as sock,
    ):
        received = read_until(sock, b"id: 1\n")
        assert b"id: 2" not in received and not received.endswith(b"0\r\n\r\n")
        received = read_until(sock, b"0\r\n\r\n", received)
    assert b"X-Accel-Buffering" not in received
    assert b"id: 2" in received


class CountingModel:
    """A stand-in model that never ends; counts the tokens it produced and
    notes when its generator was closed."""

    def __init__(self):
        self.produced = 0
        self.closed = threading.Event()

    def __call__(self, prompt):
        try:
            while True:
                self.produced += 1
                yield f"t{self.produced} ".encode()
                time.sleep(0.01)
        finally:
            self.closed.set()


def test_generation_stops_when_the_client_goes_away(live_server, monkeypatch):
    model = CountingModel()
    monkeypatch.setattr(token_stream, "fake_model", model)
    url = live_server(token_stream.app)
    body = b'{"prompt": "go on forever"}'
    sock = open_request(
        url,
        "/generate",
        method="POST",
        body=body,
        headers=["Content-Type: application/json"],
    )
    with sock:
        read_until(sock, b"t5 ")
        at_hang_up = model.produced
    assert model.closed.wait(timeout=15), "the model's finally never ran"
    after = model.produced - at_hang_up
    print(f"tokens produced after the client hung up: {after}")
    assert after <= 5
