"""Server-sent events from a shared log in Redis Streams: any instance serves
any client, and a client that reconnects resumes where it left off."""

# [recipe]
import json
import os
import re

import redis
from flask import Flask, Response, abort, request

app = Flask(__name__)

STREAM = "events"  # the log every instance reads
MAXLEN = 10_000  # keep about this many events
BLOCK_MS = 15_000  # wait this long for news, then heartbeat
RETRY_MS = 500
STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
MAX_ID_PART = 2**64 - 1  # Redis refuses a larger part

url = os.environ.get("EVENT_LOG_REDIS_URL", "redis://127.0.0.1:6379/0")
store = redis.Redis.from_url(url, decode_responses=True)


def append(message):
    """Add an event to the bounded log; its id is its SSE id."""
    return store.xadd(STREAM, {"message": message}, maxlen=MAXLEN)


def sse(event_id, message, event=None):
    head = f"event: {event}\n" if event else ""
    data = json.dumps(message)
    return f"{head}id: {event_id}\ndata: {data}\n\n"


def valid_id(text):
    """Two whole numbers up to 2**64 - 1, as Redis's ids."""
    if not STREAM_ID.fullmatch(text):
        return False
    parts = text.split("-")
    return all(int(part) <= MAX_ID_PART for part in parts)


@app.get("/events")
def events():
    last = request.headers.get("Last-Event-ID")
    if last is not None and not valid_id(last):
        abort(400, "Last-Event-ID must be a stream id"
                   " like 1700000000000-0")  # fmt: skip
    if last is None:  # a new client: from the newest on
        newest = store.xrevrange(STREAM, count=1)
        last = newest[0][0] if newest else "0-0"
    elif not store.xrange(STREAM, last, last):
        last = None  # trimmed away, or never was

    def generate():
        cursor = last
        yield f"retry: {RETRY_MS}\n\n"
        if cursor is None:  # lost to MAXLEN: say so
            newest = store.xrevrange(STREAM, count=1)
            cursor = newest[0][0] if newest else "0-0"
            note = "reload: events were missed"
            yield sse(cursor, note, event="reset")
        while True:
            reply = store.xread({STREAM: cursor}, count=100, block=BLOCK_MS)
            if not reply:  # finds out if the client left
                yield ": keep-alive\n\n"
                continue
            for cursor, fields in reply[0][1]:
                yield sse(cursor, fields["message"])

    headers = {
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    }
    return Response(generate(), mimetype="text/event-stream", headers=headers)


# [recipe-end]

from flask import render_template  # noqa: E402  (the demo, and pub/sub to compare)

CHANNEL = "events-live"  # the same events on pub/sub, to compare
MAX_MESSAGE = 1000
app.config["MAX_CONTENT_LENGTH"] = 16 * 1024  # 413 before a bigger body is read


def append_and_publish(message):
    """Append to the log, and send the same event over pub/sub."""
    event_id = append(message)
    store.publish(CHANNEL, json.dumps({"id": event_id, "message": message}))
    return event_id


# [live]
@app.get("/live")
def live():
    """The same events over pub/sub: what is sent while you are away is gone."""

    def generate():
        with store.pubsub() as pubsub:
            pubsub.subscribe(CHANNEL)
            pubsub.get_message(timeout=BLOCK_MS / 1000)  # Redis confirms it
            yield f"retry: {RETRY_MS}\n\n"
            while True:
                got = pubsub.get_message(timeout=BLOCK_MS / 1000)
                if got is None:
                    yield ": keep-alive\n\n"
                    continue
                event = json.loads(got["data"])
                yield sse(event["id"], event["message"])

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(generate(), mimetype="text/event-stream", headers=headers)


# [live-end]


@app.post("/publish")
def publish():
    try:
        payload = request.get_json(silent=True)  # None when it is not JSON
    except RecursionError:  # "[[[[...": nested deeper than Python recurses
        payload = None
    message = payload.get("message") if isinstance(payload, dict) else None
    if not isinstance(message, str) or not message.strip():
        abort(400, 'send JSON like {"message": "..."}')
    if len(message) > MAX_MESSAGE:
        abort(413, f"message is longer than {MAX_MESSAGE} characters")
    try:
        message.encode()  # JSON's "\ud800" is a str UTF-8 cannot encode
    except UnicodeEncodeError:
        abort(400, "message must be text that UTF-8 can encode")
    return {"id": append_and_publish(message)}


@app.get("/")
def demo():
    return render_template("event_log_demo.html")
