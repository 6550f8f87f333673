"""The SDK relays over sockets: Werkzeug's threaded server (what ``flask run``
uses) runs the relay, a fake provider (tests/launchers/fake_llm.py) runs on a
server of its own, and each claim is seen where it happens: on the wire, or
on the provider's side of the SDK's connection."""

import gc
import time

import pytest
from flask import Flask, Response

from snippets import llm_sdks, llm_sdks_anthropic
from tests.formats.test_llm_sdks import IDS, SDKS, serving
from tests.servers import open_request, read_until, werkzeug_server

pytestmark = pytest.mark.live

FORM = ["Content-Type: application/x-www-form-urlencoded"]


def post_chat(url):
    return open_request(url, "/chat", method="POST", headers=FORM, body=b"prompt=hi")


def read_two_tokens(sock):
    """Receive until two token events are in (chunk framing sits between)."""
    received = read_until(sock, b"data: ")
    return read_until(sock, b"data: ", received.partition(b"data: ")[2])


def hang_up_after_two_tokens(url):
    """Read two tokens of an endless answer, hang up, and return the time
    (``time.monotonic()``) of the hang-up."""
    with post_chat(url) as sock:
        read_two_tokens(sock)
    return time.monotonic()


def without_the_context_manager(module):
    """The relay as it is often written: the same view, no ``with stream``."""
    naive = Flask(f"naive_{module.__name__}")

    @naive.post("/chat")
    def chat():
        if module is llm_sdks:
            stream = module.client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            texts = (c.choices[0].delta.content for c in stream)
        else:
            stream = module.client.messages.create(
                model="m", max_tokens=5, stream=True,
                messages=[{"role": "user", "content": "hi"}],
            )  # fmt: skip
            texts = (e.type for e in stream)

        def tokens():
            for text in texts:
                yield f"data: {text}\n\n"

        return Response(tokens(), mimetype="text/event-stream")

    return naive


@pytest.mark.parametrize("module", SDKS, ids=IDS)
def test_each_token_reaches_the_client_before_the_provider_sends_the_next(module):
    """The provider holds token 1 until the client, reading the relay over a
    socket, has token 0: a checkpoint, not a timing."""
    with (
        serving(module, hold_at=1) as provider,
        werkzeug_server(module.app) as url,
        post_chat(url) as sock,
    ):
        received = read_until(sock, b'data: "Hel"')
        assert provider.holding.wait(10) and not provider.release.is_set()
        assert b'"lo"' not in received
        provider.release.set()
        received = read_until(sock, b"event: done", received)
    assert received.startswith(b"HTTP/1.1 200 OK")
    assert b"x-accel-buffering: no" in received.lower()


@pytest.mark.parametrize("module", SDKS, ids=IDS)
def test_the_provider_sees_its_connection_close_when_the_client_leaves(module):
    """An endless answer, a token every 10 ms; the client reads two tokens and
    hangs up. The server's next write fails, it closes the relay generator,
    ``with stream`` closes the SDK's response, and the provider's own server
    fails to write and ends its stream: seen on the provider's side.
    Measured: 0.02 s after the hang-up for both SDKs (openai 3.51.0,
    anthropic 2.10.0)."""
    with (
        serving(module, None, interval=0.01) as provider,
        werkzeug_server(module.app) as url,
    ):
        left = hang_up_after_two_tokens(url)
        assert provider.cut.wait(10)
    elapsed = provider.cut_at - left
    print(f"{module.__name__}: provider closed {elapsed:.3f} s after the hang-up")
    assert elapsed < 2.0
    assert provider.sent < 200  # a handful of tokens after the hang-up


def test_without_the_context_manager_openai_keeps_the_provider_generating():
    """openai 3.51.0: its Stream and the generator that reads it refer to
    each other, so dropping the relay generator frees neither: the response
    stays open until the garbage collector finds the cycle. The window is
    twenty times the close time of the recipe, measured first in this test;
    then ``gc.collect()`` closes it (measured: still sending 1 s later)."""
    with (
        serving(llm_sdks, None, interval=0.01) as provider,
        werkzeug_server(llm_sdks.app) as url,
    ):
        left = hang_up_after_two_tokens(url)
        assert provider.cut.wait(10)
        baseline = provider.cut_at - left
    with (
        serving(llm_sdks, None, interval=0.01) as provider,
        werkzeug_server(without_the_context_manager(llm_sdks)) as url,
    ):
        hang_up_after_two_tokens(url)
        sent = provider.sent
        assert not provider.cut.wait(max(1.0, 20 * baseline))
        assert provider.sent > sent  # still generating, still billed
        gc.collect()
        assert provider.cut.wait(10)


def test_without_the_context_manager_anthropic_closes_when_the_generator_is_dropped():
    """anthropic 2.10.0 iterates a copy of its Stream, so no cycle keeps it
    alive: CPython frees it, and its ``finally`` closes the response, as soon
    as the server drops the relay generator."""
    module = llm_sdks_anthropic
    with (
        serving(module, None, interval=0.01) as provider,
        werkzeug_server(without_the_context_manager(module)) as url,
    ):
        left = hang_up_after_two_tokens(url)
        assert provider.cut.wait(10)
    assert provider.cut_at - left < 2.0
