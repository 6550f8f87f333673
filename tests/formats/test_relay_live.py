"""snippets/relay.py over sockets: Werkzeug's server runs the relay, and the
fake upstream from tests/formats/test_relay.py runs on a server of its own,
so every claim is seen where it happens: on the wire, or on the upstream's
side of the relay's connection."""

import contextlib
import json
import re
import socket
import threading
import tracemalloc

import httpx
import pytest
import requests
from flask import Flask, Response

from snippets import relay
from snippets.relay import BROKE_OFF, app
from tests.formats.test_relay import DONE, FakeProvider, event, spec_events
from tests.servers import (
    asgi_in_thread,
    free_port,
    open_request,
    read_to_close,
    read_until,
    werkzeug_server,
)

pytestmark = pytest.mark.live

CHAT = json.dumps({"prompt": "hi"}).encode()
JSON = ["Content-Type: application/json"]


@pytest.fixture(scope="module")
def relay_url():
    with werkzeug_server(app) as url:
        yield url


def post_chat(url, headers=()):
    return open_request(
        url, "/chat", method="POST", headers=[*JSON, *headers], body=CHAT
    )


def chat(url):
    """POST a prompt with httpx; 30 s, for a loaded machine."""
    return httpx.post(f"{url}/chat", json={"prompt": "hi"}, timeout=30)


def chunks_of(raw):
    """The chunk sizes of a chunked body, and whether its last chunk came."""
    body = raw.partition(b"\r\n\r\n")[2]
    sizes = []
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return sizes, True
        sizes.append(size)
        body = body[size + 2 :]
    return sizes, False


def test_each_event_reaches_the_client_before_the_upstream_sends_the_next(relay_url):
    provider = FakeProvider(hold_at=1)
    with provider.serving(), post_chat(relay_url) as sock:
        received = read_until(sock, event("Hel"))
        # The upstream is waiting before event 1, which nobody has yet.
        assert provider.holding.wait(10) and not provider.release.is_set()
        assert event("lo") not in received
        provider.release.set()
        received = read_until(sock, DONE, received)
    assert b"200 OK" in received.split(b"\r\n")[0]


def test_status_and_allowed_headers_pass_hop_by_hop_and_cookies_do_not(relay_url):
    provider = FakeProvider()
    with (
        provider.serving(),
        post_chat(
            relay_url, ["Cookie: session=mine", "Authorization: Bearer browser"]
        ) as sock,
    ):
        raw = read_until(sock, DONE)
    head = raw.partition(b"\r\n\r\n")[0].decode().lower()
    assert head.startswith("http/1.1 200 ok")
    assert "content-type: text/event-stream; charset=utf-8" in head
    assert "x-request-id: req-42" in head
    assert "cache-control: no-cache" in head
    assert "set-cookie" not in head
    assert head.count("transfer-encoding: chunked") == 1  # the relay's own
    assert "content-length" not in head
    # Upstream, the relay sends its own request: not the browser's cookie or
    # credentials, and no Connection header of the client's.
    upstream_headers = provider.requests[0][0]
    assert "Cookie" not in upstream_headers
    assert "Authorization" not in upstream_headers


def test_no_upstream_cookie_reaches_the_next_request(relay_url):
    """The upstream sets a cookie on every answer; a shared httpx.Client would
    store it and send it with the next user's request."""
    first, second = FakeProvider(), FakeProvider()
    for provider in (first, second):
        with provider.serving():
            assert chat(relay_url).content
    assert "Cookie" not in second.requests[0][0]


def test_a_plain_shared_client_sends_one_users_cookie_with_the_next(
    relay_url, monkeypatch
):
    """Why the snippet refuses cookies: without the policy, the second user's
    request carries the cookie the upstream set in its answer to the first."""
    plain = httpx.Client(timeout=30)
    monkeypatch.setattr(relay, "upstream_client", plain)
    first, second = FakeProvider(), FakeProvider()
    with plain:
        for provider in (first, second):
            with provider.serving():
                assert chat(relay_url).content
    assert "Cookie" not in first.requests[0][0]
    assert second.requests[0][0]["Cookie"] == "up=secret"


@contextlib.contextmanager
def raw_upstream(response):
    """An upstream that answers one request with ``response``, byte for byte,
    then closes; the relay points at it meanwhile."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        with conn:
            read_until(conn, b"\r\n\r\n")
            conn.sendall(response)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    previous = relay.UPSTREAM_URL
    relay.UPSTREAM_URL = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    try:
        yield
    finally:
        relay.UPSTREAM_URL = previous
        listener.close()  # an accept() still waiting fails, and the thread ends
        thread.join(10)


def test_hop_by_hop_headers_from_the_upstream_are_dropped(relay_url):
    """A raw upstream that sends Connection, Keep-Alive and a header that its
    Connection header names (a WSGI app may not send them): none passes."""
    with (
        raw_upstream(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Connection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\n"
            b"X-Secret: hop\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n0\r\n\r\n"
            % (len(DONE), DONE)
        ),
        post_chat(relay_url) as sock,
    ):
        raw = read_until(sock, DONE)
    head = raw.partition(b"\r\n\r\n")[0].decode().lower()
    assert "keep-alive" not in head
    assert "x-secret" not in head


def test_upstream_cut_before_its_first_event_is_a_502(relay_url):
    with raw_upstream(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\ndata:\r\n"
    ):
        response = chat(relay_url)
    assert (response.status_code, response.json()) == (
        502,
        {"error": "the model's answer failed"},
    )


def test_the_upstream_connection_closes_when_the_client_leaves(relay_url):
    provider = FakeProvider(tokens=None, interval=0.01)
    with provider.serving():
        with post_chat(relay_url) as sock:
            received = read_until(sock, b"data: ")
            received = read_until(sock, b'"1"', received)
        # The upstream's own server fails to write to the closed connection
        # and closes its generator: seen on the upstream's side.
        assert provider.stream_ended.wait(20)
        sent_at_close = provider.sent
    assert sent_at_close < 100  # a few events after the hang-up, not forever


@pytest.mark.parametrize(
    ("provider", "status", "message"),
    [
        (FakeProvider(status=500), 502, "the model answered 500"),
        (FakeProvider(status=429), 502, "the model answered 429"),
        (FakeProvider(tokens=()), 200, None),  # [DONE] alone is an answer
    ],
    ids=["500", "429", "only-done"],
)
def test_upstream_status_before_the_first_byte(relay_url, provider, status, message):
    with provider.serving():
        response = chat(relay_url)
    assert response.status_code == status
    if message:
        assert response.json() == {"error": message}
    else:
        assert response.content == DONE


def test_upstream_unreachable_is_a_502(relay_url, monkeypatch):
    monkeypatch.setattr(relay, "UPSTREAM_URL", f"http://127.0.0.1:{free_port()}/v1")
    response = chat(relay_url)
    assert (response.status_code, response.json()) == (
        502,
        {"error": "the model could not be reached"},
    )


def test_empty_upstream_answer_is_a_502(relay_url, monkeypatch):
    empty = Flask("empty")
    empty.post("/v1")(lambda: Response(b"", mimetype="text/event-stream"))
    with werkzeug_server(empty) as url:
        monkeypatch.setattr(relay, "UPSTREAM_URL", f"{url}/v1")
        response = chat(relay_url)
    assert (response.status_code, response.json()) == (
        502,
        {"error": "the model sent an empty answer"},
    )


@pytest.fixture
def short_read_timeout(monkeypatch):
    client = httpx.Client(timeout=httpx.Timeout(30.0, read=2.0))
    monkeypatch.setattr(relay, "upstream_client", client)
    yield
    client.close()


@pytest.mark.usefixtures("short_read_timeout")
def test_upstream_silent_before_the_first_byte_is_a_504(relay_url):
    provider = FakeProvider(hold_at=0)
    with provider.serving():
        response = chat(relay_url)
    assert (response.status_code, response.json()) == (
        504,
        {"error": "the model did not answer in time"},
    )


@pytest.mark.usefixtures("short_read_timeout")
@pytest.mark.parametrize(
    "provider",
    [FakeProvider(hold_at=1), FakeProvider(fail_at=1)],
    ids=["silent-after-first-event", "cut-after-first-event"],
)
def test_upstream_failure_after_the_first_byte_is_an_error_event(
    relay_url, provider, caplog
):
    """The status is already 200: the relay says so in-band, as an SSE error
    event, and ends its body properly (the last chunk is there)."""
    with provider.serving(), post_chat(relay_url, ["Connection: close"]) as sock:
        raw = read_to_close(sock)
    assert raw.startswith(b"HTTP/1.1 200 OK")
    body = raw.partition(b"\r\n\r\n")[2]
    assert re.sub(rb"\r\n[0-9a-f]+\r\n", b"", b"\r\n" + body) == (
        event("Hel") + BROKE_OFF + b"\r\n"
    )
    assert chunks_of(raw)[1]  # complete framing: the client can tell
    assert "the upstream stream failed" in caplog.text


def test_chunks_are_whole_events_even_when_the_upstream_splits_them(relay_url):
    """The upstream writes each event in two pieces; the relay holds the first
    piece until the event is whole: no half events, no one-byte chunks."""
    provider = FakeProvider(split=True)
    with provider.serving(), post_chat(relay_url, ["Connection: close"]) as sock:
        received = b""
        for token in ("Hel", "lo", "!"):
            provider.release.set()  # let the upstream send the second piece
            received = read_until(sock, event(token), received)
        raw = read_to_close(sock)
    sizes, complete = chunks_of(received + raw)
    assert complete
    assert sizes == [len(event(t)) for t in ("Hel", "lo", "!")] + [len(DONE)]


def test_requests_iter_content_relays_one_byte_per_chunk():
    """The trap this relay avoids: requests' iter_content() reads one byte at
    a time unless told otherwise, and each byte becomes a chunk on the wire."""
    provider = FakeProvider()
    naive = Flask("naive")

    @naive.post("/chat")
    def chat():
        upstream = requests.post(relay.UPSTREAM_URL, json={}, stream=True, timeout=30)
        return Response(upstream.iter_content(), mimetype="text/event-stream")

    with (
        provider.serving(),
        werkzeug_server(naive) as url,
        post_chat(url, ["Connection: close"]) as sock,
    ):
        raw = read_to_close(sock)
    sizes, complete = chunks_of(raw)
    answer = event("Hel") + event("lo") + event("!") + DONE
    assert complete
    assert sizes == [1] * len(answer)
    assert len(raw.partition(b"\r\n\r\n")[2]) > 5 * len(answer)  # framing


def sse_starlette_provider():
    """A Starlette upstream that streams with sse-starlette's
    EventSourceResponse, which ends its lines with "\\r\\n" by default."""
    from sse_starlette import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.routing import Route

    async def completions(request):
        async def tokens():
            for token in ("Hel", "lo", "!"):
                yield {"data": json.dumps({"choices": [{"delta": {"content": token}}]})}
            yield {"data": "[DONE]"}

        return EventSourceResponse(tokens())

    return Starlette(routes=[Route("/v1/chat", completions, methods=["POST"])])


def test_an_sse_starlette_upstream_is_relayed_not_a_502(relay_url, monkeypatch):
    """On main, whole_events never found "\\n\\n" in sse-starlette's
    "\\r\\n\\r\\n" framing: the relay answered 502 "the model sent an empty
    answer"."""
    with asgi_in_thread(sse_starlette_provider()) as url:
        raw_upstream_body = httpx.post(f"{url}/v1/chat", timeout=30).content
        monkeypatch.setattr(relay, "UPSTREAM_URL", f"{url}/v1/chat")
        response = chat(relay_url)
    assert raw_upstream_body.endswith(b"data: [DONE]\r\n\r\n")  # the framing
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.content == raw_upstream_body
    assert [data for _, data in spec_events(response.content)][-1] == "[DONE]"


def peak_memory_relaying(relay_url, events):
    """Peak bytes Python allocates in this process (the fake upstream, the
    relay and its client) while ``events`` events of 10 kB, "\\r\\n"-framed,
    go through the relay over sockets."""
    provider = FakeProvider(tokens=["x" * 10_000] * events, line_end="\r\n")
    received = 0
    with provider.serving():
        tracemalloc.start()
        try:
            with httpx.stream(
                "POST", f"{relay_url}/chat", json={"prompt": "hi"}, timeout=30
            ) as response:
                assert response.status_code == 200
                for piece in response.iter_raw():
                    received += len(piece)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert received == events * len(event("x" * 10_000, "\r\n")) + 16
    return peak


def test_a_long_relayed_answer_does_not_grow_the_relays_memory(relay_url):
    """5 MB through the relay peaks within twice what 200 kB peaks at: the
    relay holds one event at a time, not the answer. Each size is relayed
    twice, in turn, and its lower peak counts: a thread left by an earlier
    test can allocate during one run, not during both."""
    runs = [peak_memory_relaying(relay_url, n) for n in (20, 500, 20, 500)]
    short, long = min(runs[0::2]), min(runs[1::2])
    print(f"peaks: {runs[0::2]} B for 200 kB, {runs[1::2]} B for 5 MB")
    assert long < 2 * short, runs
