"""snippets/quart.py over a socket, under uvicorn and hypercorn (in a
thread of the test process, so the test can watch a spy model): tokens
arrive before the model ends; leaving stops the model, even a silent one;
RESPONSE_TIMEOUT cuts a stream that keeps it."""

import asyncio
import json
import threading

import pytest
from quart import Quart, Response

from snippets import quart as quart_tokens
from snippets.quart import app
from tests.servers import (
    asgi_in_thread,
    dechunk,
    open_request,
    read_to_close,
    wait_until,
)

pytestmark = pytest.mark.live

SERVERS = ["uvicorn", "hypercorn"]
PROMPT = json.dumps({"prompt": "hi"}).encode()


@pytest.fixture(scope="module", params=SERVERS)
def url(request):
    with asgi_in_thread(app, request.param) as url:
        yield url


def read_tokens(sock, count):
    """Receive until ``count`` tokens are in (each in a chunk of its own)."""
    received = b""
    while received.count(b"token ") < count:
        data = sock.recv(65536)
        assert data, f"closed early: {received!r}"
        received += data
    return received


def post_generate(url, headers=()):
    headers = ["Content-Type: application/json", *headers]
    return open_request(
        url, "/generate", method="POST", headers=headers, body=PROMPT, timeout=30
    )


class Spy:
    """A model that yields ``b"token "`` every few ms, forever; after
    ``silent_after`` tokens it waits for :attr:`gate` (set by the test, or
    never). Records how it ended."""

    def __init__(self, silent_after=None):
        self.produced = 0
        self.ended = None
        self.silent_after = silent_after
        self.gate = threading.Event()

    async def __call__(self, prompt):
        try:
            while True:
                if self.produced == self.silent_after:
                    await asyncio.to_thread(self.gate.wait, 20)
                    yield b"last"
                    return
                self.produced += 1
                await asyncio.sleep(0.005)
                yield b"token "
        except BaseException as exc:
            self.ended = type(exc).__name__
            raise
        finally:
            self.ended = self.ended or "finished"


def test_tokens_arrive_before_the_model_ends(url, monkeypatch):
    model = Spy(silent_after=3)
    monkeypatch.setattr(quart_tokens, "fake_model", model)
    with post_generate(url, ["Connection: close"]) as sock:
        received = read_tokens(sock, 3)
        assert model.ended is None  # the model is holding its last token
        model.gate.set()
        received += read_to_close(sock)
    body, complete = dechunk(received.partition(b"\r\n\r\n")[2])
    assert (body, complete) == (b"token " * 3 + b"last", True)


@pytest.mark.parametrize("silent_after", [None, 3], ids=["endless", "silent"])
def test_leaving_cancels_the_model(url, monkeypatch, silent_after):
    """The ASGI server reports the disconnect and Quart cancels the task that
    sends the body: the model gets CancelledError at its await, even while
    it is silent (a WSGI server notices only on a failed write)."""
    model = Spy(silent_after)
    monkeypatch.setattr(quart_tokens, "fake_model", model)
    try:
        with post_generate(url) as sock:
            read_tokens(sock, 3)
        assert wait_until(lambda: model.ended is not None, timeout=20)
    finally:
        model.gate.set()  # free the thread a cancelled to_thread() leaves waiting
    assert model.ended == "CancelledError"
    assert model.produced < 50


def test_response_timeout_cuts_a_stream_on_the_wire():
    """A stream that keeps RESPONSE_TIMEOUT (0.3 s here) is cut when it runs
    out: status 200, the parts sent so far, and no last chunk, on both
    servers."""
    other = Quart(__name__)
    other.config["RESPONSE_TIMEOUT"] = 0.3

    @other.get("/")
    async def slow():
        async def parts():
            for number in range(10):
                await asyncio.sleep(0.1)
                yield f"{number}\n"

        return Response(parts())

    for server in SERVERS:
        with (
            asgi_in_thread(other, server) as base,
            open_request(base, "/", headers=["Connection: close"], timeout=30) as sock,
        ):
            raw = read_to_close(sock)
        body, complete = dechunk(raw.partition(b"\r\n\r\n")[2])
        assert raw.startswith(b"HTTP/1.1 200")
        assert not complete, server
        assert body.count(b"\n") < 10, server
