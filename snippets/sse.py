"""Server-sent events: a stream EventSource reads, resumed with
Last-Event-ID, kept alive with heartbeats; the site's one SSE encoder."""

# [recipe]
import json
import re
import time

from flask import Flask, Response, abort, request

app = Flask(__name__)

EVERY_SECONDS = 1.0  # one event a second
RETRY_MS = 1000  # EventSource waits this long to reconnect
HEARTBEAT_SECONDS = 15.0  # an idle stream speaks this often
HEARTBEAT = ": keep-alive\n\n"  # a comment: not an event
# No cache keeps the stream, and nginx passes events on.
STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}
LINE_END = re.compile(r"\r\n|\r|\n")  # SSE's line ends


def encode(data, *, event=None, id=None, retry=None):
    """One event: each line of ``data`` is a ``data:`` field.

    >>> encode("two\\nlines", event="note", id=7)
    'event: note\\nid: 7\\ndata: two\\ndata: lines\\n\\n'
    """
    fields = []
    for name, value in (("event", event), ("id", id)):
        if value is not None:
            value = str(value)
            if LINE_END.search(value) or "\0" in value:
                raise ValueError(f"{name} must be one line without NUL")
            fields.append(f"{name}: {value}")
    if retry is not None:
        fields.append(f"retry: {int(retry)}")
    fields += [f"data: {line}" for line in LINE_END.split(data)]
    return "\n".join(fields) + "\n\n"


def encode_json(payload, **fields):
    """JSON escapes every line end: the event stays whole."""
    return encode(json.dumps(payload, ensure_ascii=False), **fields)


def last_event_id():
    """The id EventSource sends when it reconnects; 0 at first."""
    last_id = request.headers.get("Last-Event-ID", "")
    if last_id and not re.fullmatch(r"[0-9]{1,9}", last_id):
        abort(400, "Last-Event-ID must be the id of an event from this stream")
    return int(last_id or 0)


def ticks(start, every=EVERY_SECONDS, limit=None):
    """Events numbered from ``start + 1``, until ``limit``."""
    n = start
    try:
        # The first write sends the headers at once.
        yield f"retry: {RETRY_MS}\n\n"
        while limit is None or n < start + limit:
            # Speak while idle: a failed write finds a gone client.
            due = time.monotonic() + every
            while due - time.monotonic() > HEARTBEAT_SECONDS:
                time.sleep(HEARTBEAT_SECONDS)
                yield HEARTBEAT
            time.sleep(max(0.0, due - time.monotonic()))
            n += 1
            tick = {"n": n, "text": f"tick {n}"}
            yield encode_json(tick, event="tick", id=n)
    finally:
        app.logger.info("stream closed after event %d", n)


@app.get("/stream")
def stream():
    return Response(
        ticks(last_event_id()),
        mimetype="text/event-stream",
        headers=STREAM_HEADERS,
    )


# [recipe-end]

from flask import render_template  # noqa: E402

from snippets.checks import whole_number  # noqa: E402

MAX_LIMIT = 1000
MAX_EVERY_MS = 60_000


# [events]
@app.get("/events")
def events():
    """The same stream, events ``every`` ms apart; after ``limit``
    events, if given, the server closes it."""
    start = last_event_id()
    limit = None  # absent: until the client leaves
    if "limit" in request.args:
        limit = whole_number("limit", 1, MAX_LIMIT)
    every = whole_number("every", 0, MAX_EVERY_MS, default=1000)
    stream = ticks(start, every / 1000, limit)
    return Response(stream, mimetype="text/event-stream", headers=STREAM_HEADERS)


# [events-end]


@app.get("/")
def demo():
    return render_template("sse_demo.html")
