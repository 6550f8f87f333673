"""Relay a streamed answer from an upstream API (OpenAI-style SSE) to the client."""

# [recipe]
import contextlib
import http.cookiejar
import os
import re

import httpx
from flask import Flask, Response, abort, request
from werkzeug.exceptions import HTTPException

app = Flask(__name__)

UPSTREAM_URL = os.environ.get(
    "RELAY_UPSTREAM_URL", "http://127.0.0.1:5001/v1/chat/completions"
)
API_KEY = os.environ.get("RELAY_API_KEY", "")
MODEL = os.environ.get("RELAY_MODEL", "gpt-4o-mini")
MAX_PROMPT = 2000  # characters


# read: the longest silence, before the first event or
# between two; connect: how long the upstream may take to accept.
TIMEOUT = httpx.Timeout(10.0, connect=3.0, read=30.0, pool=3.0)
# An allow-list: hop-by-hop headers (Connection...), cookies
# and the upstream's Content-Length never pass.
PASSED_HEADERS = ("Content-Type", "X-Request-Id")
OWN_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
BROKE_OFF = b'event: error\ndata: {"error": "the answer broke off"}\n\n'

# One connection pool for the process. A shared client keeps
# cookies too: one user's upstream Set-Cookie would go out
# with every later user's request. Refuse them all.
NO_COOKIES = http.cookiejar.CookieJar(
    http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
)
upstream_client = httpx.Client(timeout=TIMEOUT, cookies=NO_COOKIES)


@app.post("/chat")
def chat():
    upstream, first, events = open_upstream(read_prompt())

    def relay():
        # Closing the response closes its connection.
        with contextlib.closing(upstream):
            yield first
            try:
                yield from events
            except (httpx.TransportError, BrokenStream):
                # A timeout or a cut after the 200: say so.
                app.logger.exception("the upstream stream failed")
                yield BROKE_OFF

    headers = dict(OWN_HEADERS)
    for name in PASSED_HEADERS:
        if name in upstream.headers:
            headers[name] = upstream.headers[name]
    return Response(relay(), upstream.status_code, headers)


def read_prompt():
    """The prompt from the JSON body, or a 400 that says why."""
    try:
        payload = request.get_json(silent=True)  # None: not JSON
    except RecursionError:  # "[[[[...": nested too deep
        payload = None
    prompt = None
    if isinstance(payload, dict):
        prompt = payload.get("prompt")
    if not isinstance(prompt, str):
        abort(400, 'send JSON like {"prompt": "..."}')
    if not 0 < len(prompt.strip()) <= MAX_PROMPT:
        abort(400, f"the prompt must be 1 to {MAX_PROMPT} characters")
    try:
        prompt.encode()  # JSON's "\ud800" is no UTF-8 text
    except UnicodeEncodeError:
        abort(400, "the prompt must be text that UTF-8 can encode")
    return prompt


def open_upstream(prompt):
    """Send the request and wait for the first event: until it arrives, a
    failure can still be a proper 502 or 504."""
    body = {"model": MODEL, "stream": True}
    body["messages"] = [{"role": "user", "content": prompt}]
    headers = {"Authorization": f"Bearer {API_KEY}"} if API_KEY else {}
    outgoing = upstream_client.build_request(
        "POST", UPSTREAM_URL, json=body, headers=headers
    )
    with contextlib.ExitStack() as on_failure:
        try:
            upstream = upstream_client.send(outgoing, stream=True)
            on_failure.callback(upstream.close)
            if upstream.status_code != 200:
                abort(502, f"the model answered {upstream.status_code}")
            events = whole_events(upstream.iter_bytes())
            first = next(events, None)
        except httpx.TimeoutException:
            abort(504, "the model did not answer in time")
        except httpx.ConnectError:
            abort(502, "the model could not be reached")
        except (httpx.TransportError, BrokenStream):  # before an event
            abort(502, "the model's answer failed")
        if first is None:
            abort(502, "the model sent an empty answer")
        on_failure.pop_all()  # from now on, relay() closes it
    return upstream, first, events


# A blank line ends an event; SSE ends a line with \r\n,
# \r or \n.
BLANK_LINE = re.compile(rb"(?:\r\n|\r(?!\n)|\n){2}")
MAX_EVENT = 1024 * 1024  # bytes held for one event


class BrokenStream(Exception):
    """The upstream ended mid-event, or sent one too long."""


def whole_events(chunks):
    """Pass on the upstream's bytes as they come, cut after
    the last blank line: no half event reaches the client,
    and an error event starts on its own. Only the
    unfinished event is held."""
    buffer = bytearray()
    for chunk in chunks:
        # A blank line is at most 4 bytes: look only where
        # a new one can be.
        start = max(len(buffer) - 3, 0)
        buffer += chunk
        # A "\r" at the end is a line end. If a "\n" follows,
        # it leads the next cut, and changes nothing.
        ends = [m.end() for m in BLANK_LINE.finditer(buffer, start)]
        if ends:
            yield bytes(buffer[: ends[-1]])
            del buffer[: ends[-1]]
        if len(buffer) > MAX_EVENT:
            raise BrokenStream(f"an event over {MAX_EVENT} bytes")
    if buffer.strip(b"\r\n"):  # the spec drops such an event
        raise BrokenStream("the answer ended in the middle of an event")


@app.errorhandler(HTTPException)
def error_as_json(error):
    return {"error": error.description}, error.code


# [recipe-end]
