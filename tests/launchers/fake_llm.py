"""Fake model providers on 127.0.0.1 that speak the OpenAI and Anthropic
streaming formats, for the official SDKs to talk to through ``base_url``.

``fake_llm(...)`` starts one on Werkzeug's threaded server and yields it:
``.url`` (the SDKs' ``base_url``), ``.proc`` (``None``: it runs in a thread),
``.log()`` and ``.stop()``. Each answer is scripted: ``tokens`` (``None``
streams forever, one token every ``interval`` s), ``status`` (an error
before the stream), ``hold_at=n`` (wait for :attr:`release` before token
``n``: a checkpoint), ``error_at=n`` (an in-band error event instead of token
``n``). The provider records when its stream ended early (``cut``: its
server could not write to the SDK's closed connection) and how many tokens
it had sent by then.
"""

import contextlib
import itertools
import json
import threading
import time

from flask import Flask, Response, request

from tests.servers import werkzeug_server


def openai_chunk(text):
    return {
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
        "model": "fake", "choices": [
            {"index": 0, "delta": {"content": text}, "finish_reason": None}
        ],
    }  # fmt: skip


def sse(data, event=None):
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


MESSAGE = {
    "id": "msg_1", "type": "message", "role": "assistant", "model": "fake",
    "content": [], "stop_reason": None, "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 0},
}  # fmt: skip


class FakeLLM:
    def __init__(
        self, tokens=("Hel", "lo", "!"), *, status=200, hold_at=None,
        error_at=None, interval=0.0,
    ):  # fmt: skip
        self.tokens, self.status, self.interval = tokens, status, interval
        self.hold_at, self.error_at = hold_at, error_at
        self.url, self.proc = None, None
        self.requests = []
        self.sent = 0
        self.lines = []
        self.holding = threading.Event()
        self.release = threading.Event()
        self.cut = threading.Event()  # the stream ended before its last token
        self.cut_at = None  # time.monotonic() when it did
        self.finished = threading.Event()
        self.app = Flask("fake_llm")
        self.app.post("/v1/chat/completions")(self.openai)
        self.app.post("/v1/messages")(self.anthropic)
        self._stop = None

    def log(self):
        return "\n".join(self.lines)

    def stop(self):
        if self._stop is not None:
            self._stop.close()
            self._stop = None

    # The two APIs: their status errors, and their event formats.
    def openai(self):
        self.requests.append((dict(request.headers), request.get_json()))
        if self.status != 200:
            error = {"message": "upstream trouble", "type": "server_error"}
            return {"error": error}, self.status
        return self.respond(
            lambda text: sse(openai_chunk(text)),
            error=sse({"error": {"message": "the model crashed"}}),
            start=b"",
            end=b"data: [DONE]\n\n",
        )

    def anthropic(self):
        self.requests.append((dict(request.headers), request.get_json()))
        if self.status != 200:
            error = {"type": "api_error", "message": "upstream trouble"}
            return {"type": "error", "error": error}, self.status
        start = sse({"type": "message_start", "message": MESSAGE}, "message_start")
        start += sse(
            {"type": "content_block_start", "index": 0,
             "content_block": {"type": "text", "text": ""}},
            "content_block_start",
        )  # fmt: skip
        end = sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
        end += sse(
            {"type": "message_delta",
             "delta": {"stop_reason": "end_turn", "stop_sequence": None},
             "usage": {"output_tokens": 3}},
            "message_delta",
        )  # fmt: skip
        end += sse({"type": "message_stop"}, "message_stop")
        overloaded = {"type": "overloaded_error", "message": "Overloaded"}
        return self.respond(
            lambda text: sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                },
                "content_block_delta",
            ),
            error=sse({"type": "error", "error": overloaded}, "error"),
            start=start,
            end=end,
        )

    def respond(self, encode, *, error, start, end):
        return Response(
            self.stream(encode, error, start, end),
            mimetype="text/event-stream",
            headers={"request-id": "req-42"},
        )

    def stream(self, encode, error, start, end):
        tokens = itertools.count() if self.tokens is None else self.tokens
        done = False
        try:
            if start:
                yield start
            for number, token in enumerate(tokens):
                if number == self.hold_at:
                    self.holding.set()
                    self.release.wait(20)
                if number == self.error_at:
                    yield error
                    done = True
                    return
                yield encode(str(token))
                self.sent += 1
                if self.interval:
                    time.sleep(self.interval)  # a model producing tokens
            yield end
            done = True
        finally:
            if done:
                self.finished.set()
            else:
                self.cut_at = time.monotonic()
                self.lines.append(f"stream cut after {self.sent} tokens")
                self.cut.set()


@contextlib.contextmanager
def fake_llm(*args, **script):
    """A :class:`FakeLLM` served on 127.0.0.1; stopped on exit."""
    provider = FakeLLM(*args, **script)
    with contextlib.ExitStack() as stack:
        provider.url = stack.enter_context(werkzeug_server(provider.app))
        provider._stop = stack.pop_all()
        try:
            yield provider
        finally:
            provider.release.set()  # a held stream may end
            provider.stop()
