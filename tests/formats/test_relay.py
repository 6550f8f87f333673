"""snippets/relay.py in-process: the input checks and the event cutter; and
the fake upstream (an OpenAI-style streaming API) that the page and
tests/formats/test_relay_live.py relay from."""

import contextlib
import itertools
import json
import threading

import pytest
from flask import Flask, Response, request

from snippets import relay
from snippets.relay import app, whole_events
from tests.servers import werkzeug_server


def event(token):
    chunk = {"choices": [{"delta": {"content": token}}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


DONE = b"data: [DONE]\n\n"


class FakeProvider:
    """An OpenAI-style streaming chat API, scripted by the test.

    ``hold_at=n`` waits for :attr:`release` before event ``n`` (``0``: before
    the headers too); ``fail_at=n`` breaks the connection instead of sending
    event ``n``; ``tokens=None`` streams forever, every ``interval`` s;
    ``split=True`` sends each event in two writes, the second after
    :attr:`release`. It records what it was sent, when it is waiting at
    ``hold_at`` and when its stream ended. :attr:`sent` counts the events
    whose write returned, so it can lag what a reader has already seen.
    """

    def __init__(
        self, tokens=("Hel", "lo", "!"), *, status=200, hold_at=None,
        fail_at=None, interval=0.0, split=False,
    ):  # fmt: skip
        self.requests = []
        self.sent = 0
        self.stream_ended = threading.Event()
        self.holding = threading.Event()
        self.release = threading.Event()
        self.app = Flask("fake_provider")

        @self.app.post("/v1/chat/completions")
        def completions():
            self.requests.append((dict(request.headers), request.get_json()))
            if status != 200:
                return {"error": {"message": "upstream trouble"}}, status
            if hold_at == 0:
                self.release.wait(20)
            return Response(
                self.stream(tokens, hold_at, fail_at, interval, split),
                mimetype="text/event-stream",
                headers={"X-Request-Id": "req-42", "Set-Cookie": "up=secret"},
            )

    def stream(self, tokens, hold_at, fail_at, interval, split):
        try:
            for number, token in enumerate(
                itertools.count() if tokens is None else tokens
            ):
                if number == fail_at:
                    raise ConnectionError("the model crashed")
                if number == hold_at and number:
                    self.holding.set()
                    self.release.wait(20)
                data = event(str(token))
                if split:
                    yield data[:10]
                    self.release.wait(20)
                    self.release.clear()
                    data = data[10:]
                yield data
                self.sent += 1
                if interval:
                    threading.Event().wait(interval)
            yield DONE
        finally:
            self.stream_ended.set()

    @contextlib.contextmanager
    def serving(self):
        """Serve it on 127.0.0.1 and point the relay at it; yields self."""
        with werkzeug_server(self.app) as url:
            previous = relay.UPSTREAM_URL
            relay.UPSTREAM_URL = f"{url}/v1/chat/completions"
            try:
                yield self
            finally:
                relay.UPSTREAM_URL = previous
                self.release.set()  # let a held stream finish


client = app.test_client()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, 'send JSON like {"prompt": "..."}'),
        ({"prompt": 42}, 'send JSON like {"prompt": "..."}'),
        ({"prompt": " \n"}, "the prompt must be 1 to 2000 characters"),
        ({"prompt": "x" * 2001}, "the prompt must be 1 to 2000 characters"),
        ("not an object", 'send JSON like {"prompt": "..."}'),
        ({"prompt": "hi \ud800"}, "the prompt must be text that UTF-8 can encode"),
    ],
)
def test_bad_input_is_a_400_before_the_upstream_is_asked(body, message):
    """The view checks before it calls the upstream: a call would have ended
    in a stream or a 502, not a 400."""
    response = client.post("/chat", json=body)
    assert (response.status_code, response.json) == (400, {"error": message})


def test_not_json_is_a_400():
    response = client.post("/chat", data="prompt=hi")
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[" * 5000, 'send JSON like {"prompt": "..."}'),
        ('{"prompt": ' + "[" * 5000, 'send JSON like {"prompt": "..."}'),
        (
            b'{"prompt": "\xed\xa0\x80"}',
            "the prompt must be text that UTF-8 can encode",
        ),
    ],
    ids=["deep-array", "deep-value", "surrogate-bytes"],
)
def test_json_too_deep_or_a_lone_surrogate_is_a_400_not_a_500(data, message):
    """Both were 500s, found by the adversarial tier's sweep of hostile JSON
    bodies: get_json(silent=True) lets RecursionError through, and
    json.loads reads the bytes ED A0 80 as the lone surrogate U+D800, which
    the upstream request could not encode."""
    response = client.post("/chat", data=data, content_type="application/json")
    assert (response.status_code, response.json) == (400, {"error": message})


def test_whole_events_cuts_at_the_last_event_boundary():
    chunks = [b"data: a", b"\n\ndata: b\n\ndata:", b" c\n", b"\n"]
    assert list(whole_events(chunks)) == [b"data: a\n\ndata: b\n\n", b"data: c\n\n"]


def test_whole_events_drops_an_unfinished_last_event():
    """An event without its blank line is not an event (the SSE spec drops it
    at the end of the stream too)."""
    assert list(whole_events([b"data: a\n\ndata: b"])) == [b"data: a\n\n"]


def test_in_process_relay_streams_the_answer():
    provider = FakeProvider()
    with provider.serving():
        response = client.post("/chat", json={"prompt": "hi"})
        body = response.get_data()
    assert body == event("Hel") + event("lo") + event("!") + DONE
    headers, sent = provider.requests[0]
    assert "Authorization" not in headers  # no key set: none sent
    assert sent["stream"] is True
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
