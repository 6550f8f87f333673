"""snippets/relay.py in-process: the input checks and the event cutter; and
the fake upstream (an OpenAI-style streaming API) that the page and
tests/formats/test_relay_live.py relay from."""

import contextlib
import itertools
import json
import re
import threading
import tracemalloc

import pytest
from flask import Flask, Response, request

from snippets import relay
from snippets.relay import app, whole_events
from tests.servers import werkzeug_server


def event(token, line_end="\n"):
    chunk = {"choices": [{"delta": {"content": token}}]}
    return f"data: {json.dumps(chunk)}{line_end * 2}".encode()


DONE = b"data: [DONE]\n\n"


class FakeProvider:
    """An OpenAI-style streaming chat API, scripted by the test.

    ``hold_at=n`` waits for :attr:`release` before event ``n`` (``0``: before
    the headers too); ``fail_at=n`` breaks the connection instead of sending
    event ``n``; ``tokens=None`` streams forever, every ``interval`` s;
    ``split=True`` sends each event in two writes, the second after
    :attr:`release`; ``line_end`` ends every line (SSE allows ``"\\r\\n"``
    and ``"\\r"`` too); ``unfinished=True`` ends the stream without the
    blank line after ``[DONE]``. It records what it was sent, when it is
    waiting at ``hold_at`` and when its stream ended. :attr:`sent` counts the events
    whose write returned, so it can lag what a reader has already seen.
    """

    def __init__(
        self, tokens=("Hel", "lo", "!"), *, status=200, hold_at=None,
        fail_at=None, interval=0.0, split=False, line_end="\n",
        unfinished=False,
    ):  # fmt: skip
        self.requests = []
        self.sent = 0
        self.stream_ended = threading.Event()
        self.holding = threading.Event()
        self.release = threading.Event()
        self.line_end, self.unfinished = line_end, unfinished
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
                data = event(str(token), self.line_end)
                if split:
                    yield data[:10]
                    self.release.wait(20)
                    self.release.clear()
                    data = data[10:]
                yield data
                self.sent += 1
                if interval:
                    threading.Event().wait(interval)
            done = b"data: [DONE]" + self.line_end.encode() * 2
            yield done[: len(done) - len(self.line_end) * self.unfinished]
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


def spec_blank_lines(stream):
    """Where a blank line ends in ``stream``, read as the WHATWG event-stream
    rules read it: a line ends at "\\r\\n", "\\r" or "\\n", and an empty
    line dispatches the event. An empty line ended by "\\r\\n" is dispatched
    at its "\\r" already, so both offsets count."""
    ends, line_start, i = set(), 0, 0
    while i < len(stream):
        if stream[i : i + 1] in (b"\r", b"\n"):
            crlf = stream[i : i + 2] == b"\r\n"
            if i == line_start:
                ends |= {i + 1, i + 2} if crlf else {i + 1}
            i += 2 if crlf else 1
            line_start = i
        else:
            i += 1
    return ends


def spec_events(stream):
    """The (event, data) pairs a browser's EventSource dispatches."""
    events, name, data = [], "", []
    for line in re.split(rb"\r\n|\r|\n", stream)[:-1]:  # the last is unended
        if not line:
            if data:
                events.append((name or "message", "\n".join(data)))
            name, data = "", []
        field, _, value = line.decode().partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    return events


# Every framing SSE allows, and a mix of them, with comments and a BOM.
FRAMINGS = {
    "lf": b"data: a\n\ndata: b\nid: 2\n\n",
    "crlf": b"data: a\r\n\r\ndata: b\r\nid: 2\r\n\r\n",
    "cr": b"data: a\r\rdata: b\rid: 2\r\r",
    "mixed": b"\xef\xbb\xbfdata: a\r\n\ndata: b\n\r\n: hi\r\r\ndata: c\r\n\r",
}


@pytest.mark.parametrize("name", FRAMINGS)
def test_whole_events_cuts_at_every_sse_line_end(name):
    """One chunk holding the whole stream comes out whole: on main, which cut
    only at "\\n\\n", a "\\r\\n" or "\\r" stream yielded nothing."""
    stream = FRAMINGS[name]
    assert list(whole_events([stream])) == [stream]
    assert len(spec_events(stream)) >= 2


@pytest.mark.parametrize("name", FRAMINGS)
def test_whole_events_cuts_only_at_blank_lines_however_the_bytes_arrive(name):
    """Every split of the stream into three pieces: each piece the relay
    passes on ends where the spec ends an event, nothing is held back, and
    the client reads the same events as from the upstream."""
    stream = FRAMINGS[name]
    blank_line_ends = spec_blank_lines(stream)
    for i, j in itertools.combinations_with_replacement(range(len(stream) + 1), 2):
        pieces = list(whole_events([stream[:i], stream[i:j], stream[j:]]))
        offset = 0
        for piece in pieces:
            offset += len(piece)
            assert offset in blank_line_ends, (i, j, pieces)
        passed = b"".join(pieces)  # all but line ends after the last event
        assert stream.startswith(passed) and not stream[len(passed) :].strip(b"\r\n")
        assert spec_events(b"".join(pieces)) == spec_events(stream)


def test_a_cr_at_the_end_of_a_chunk_ends_the_event_without_waiting():
    """ "\\r" at the end of a chunk ends a line, as the spec says, so the event
    goes out at once; the "\\n" that completes its "\\r\\n" leads the next
    chunk, where the client's parser reads it as part of the same line end."""
    chunks = [b"data: a\r\n\r", b"\ndata: b\r\n\r\n"]
    assert list(whole_events(chunks)) == chunks
    assert spec_events(b"".join(chunks)) == [("message", "a"), ("message", "b")]


def test_a_cr_alone_is_not_a_blank_line_until_the_next_chunk_says_so():
    events = whole_events(iter([b"data: a\r", b"\n", b"\r\n"]))
    assert list(events) == [b"data: a\r\n\r\n"]


def test_an_unfinished_last_event_is_reported_not_passed_on():
    """The spec drops an event whose blank line never comes; the relay does
    not pass its bytes on either, and says the answer broke off."""
    events = whole_events([b"data: a\n\ndata: [DONE]\n"])
    assert next(events) == b"data: a\n\n"
    with pytest.raises(relay.BrokenStream, match="middle of an event"):
        next(events)


def test_line_ends_after_the_last_event_are_not_an_error():
    """They end empty lines (nothing to dispatch): the relay passes them on
    with the next event, or drops them at the end."""
    pieces = list(whole_events([b"data: a\r\n\r\n\n", b"\r"]))
    assert pieces == [b"data: a\r\n\r\n", b"\n\r"]
    assert list(whole_events([b"data: a\n\n\n"])) == [b"data: a\n\n"]


def test_an_event_longer_than_max_event_is_a_broken_stream(monkeypatch):
    """A line that never ends is refused at MAX_EVENT bytes, not held."""
    monkeypatch.setattr(relay, "MAX_EVENT", 100)
    events = whole_events(itertools.repeat(b"x" * 30))
    with pytest.raises(relay.BrokenStream, match="over 100 bytes"):
        list(events)
    assert list(whole_events([b"data: " + b"x" * 92 + b"\n\n"]))  # 100: fine


def peak_memory_of_relaying(events):
    """Peak bytes allocated while whole_events passes on ``events`` events of
    4,100 bytes, "\\r\\n"-framed, read 1,000 bytes at a time (so the reads
    split every blank line)."""
    stream = (b"data: " + b"x" * 4090 + b"\r\n\r\n") * events

    def reads():
        for start in range(0, len(stream), 1000):
            yield stream[start : start + 1000]

    tracemalloc.start()
    try:
        passed = sum(len(piece) for piece in whole_events(reads()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert passed == len(stream)
    return peak


def test_a_long_answer_holds_one_event_at_a_time():
    """A 4.1 MB answer peaks at the memory of a 41 kB one (about 20 kB): one
    event and one read are held, never the answer. (On main, which never
    found "\\n\\n" in it, it held all of it and then passed nothing on.)"""
    short, long = peak_memory_of_relaying(10), peak_memory_of_relaying(1000)
    assert long < 2 * short, (short, long)


@pytest.mark.parametrize("line_end", ["\r\n", "\r"])
def test_an_upstream_framing_with_crlf_or_cr_is_relayed_not_a_502(line_end):
    """sse-starlette frames with "\\r\\n" by default; on main both were a
    502 "the model sent an empty answer"."""
    provider = FakeProvider(line_end=line_end)
    with provider.serving():
        response = client.post("/chat", json={"prompt": "hi"})
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert spec_events(response.get_data()) == [
        ("message", json.dumps({"choices": [{"delta": {"content": t}}]}))
        for t in ("Hel", "lo", "!")
    ] + [("message", "[DONE]")]


def test_an_upstream_that_ends_mid_event_gets_an_error_event():
    """An upstream whose "[DONE]" has no blank line ended mid-event: the
    client gets every whole event, then the error event, not the half one."""
    provider = FakeProvider(unfinished=True)
    with provider.serving():
        body = client.post("/chat", json={"prompt": "hi"}).get_data()
    assert body == event("Hel") + event("lo") + event("!") + relay.BROKE_OFF


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


def test_an_answer_that_ends_inside_its_first_event_is_a_502():
    """Nothing was sent yet, so the unfinished event is still a 502."""
    provider = FakeProvider(tokens=(), unfinished=True)
    with provider.serving():
        response = client.post("/chat", json={"prompt": "hi"})
    assert (response.status_code, response.json) == (
        502,
        {"error": "the model's answer failed"},
    )
