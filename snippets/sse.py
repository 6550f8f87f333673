"""Server-sent events: a correct encoder, heartbeats, resuming with Last-Event-ID."""

import json
import re
import time

from flask import Flask, Response, abort, render_template, request

app = Flask(__name__)

RETRY_MS = 1000  # how long EventSource waits before it reconnects
HEARTBEAT_SECONDS = 15.0  # an idle stream sends a comment this often
MAX_LIMIT = 1000
MAX_EVERY_MS = 60_000
LINE_END = re.compile(r"\r\n|\r|\n")  # the only line ends SSE knows


# [encode]
def encode(data, *, event=None, id=None, retry=None):
    """One event as text: each line of ``data`` gets its own ``data:`` field.

    >>> encode("two\\nlines", event="note", id=7)
    'event: note\\nid: 7\\ndata: two\\ndata: lines\\n\\n'
    """
    fields = []
    for name, value in (("event", event), ("id", id)):
        if value is not None:
            if LINE_END.search(str(value)) or "\0" in str(value):
                raise ValueError(f"{name} must be one line without NUL")
            fields.append(f"{name}: {value}")
    if retry is not None:
        fields.append(f"retry: {int(retry)}")
    fields += [f"data: {line}" for line in LINE_END.split(data)]
    return "\n".join(fields) + "\n\n"


def encode_json(payload, **fields):
    """JSON escapes every newline, so the event always arrives whole."""
    return encode(json.dumps(payload, ensure_ascii=False), **fields)


HEARTBEAT = ": keep-alive\n\n"  # a comment: EventSource ignores it

# Headers for any long-lived stream: no cache may keep it, and nginx passes
# each chunk on instead of filling its buffer first.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# [encode-end]


def read_int(name, low, high, default):
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        number = int(raw)
    except ValueError:
        abort(400, f"{name} must be a whole number from {low} to {high}")
    if not (raw.isascii() and raw.isdecimal()) or not low <= number <= high:
        abort(400, f"{name} must be a whole number from {low} to {high}")
    return number


# [events]
@app.get("/events")
def events():
    # The browser sends the id of the last event it saw when it reconnects.
    last_id = request.headers.get("Last-Event-ID", "")
    if last_id and not re.fullmatch(r"[0-9]{1,9}", last_id):
        abort(400, "Last-Event-ID must be the id of an event from this stream")
    limit = read_int("limit", 1, MAX_LIMIT, default=None)  # then close
    every = read_int("every", 0, MAX_EVERY_MS, default=1000) / 1000
    start = int(last_id or 0)

    def generate():
        n = start
        try:
            # The first write sends the headers at once, and the retry delay.
            yield f"retry: {RETRY_MS}\n\n"
            while limit is None or n < start + limit:
                # Speak up while idle: a dead client is found on a failed write.
                deadline = time.monotonic() + every
                while deadline - time.monotonic() > HEARTBEAT_SECONDS:
                    time.sleep(HEARTBEAT_SECONDS)
                    yield HEARTBEAT
                time.sleep(max(0.0, deadline - time.monotonic()))
                n += 1
                yield encode_json({"n": n, "text": f"tick {n}"}, event="tick", id=n)
        finally:
            app.logger.info("stream closed after event %d", n)

    return Response(
        generate(),
        mimetype="text/event-stream",
        headers=STREAM_HEADERS,
    )


# [events-end]


@app.get("/")
def demo():
    return render_template("sse_demo.html")
