"""Broadcast: one publisher, many SSE subscribers; in-process or Redis."""

# [recipe]
import contextlib
import json
import queue
import threading

from flask import Flask, Response, abort, request

app = Flask(__name__)
# A bigger body is a 413 before it is read.
app.config["MAX_CONTENT_LENGTH"] = 16 * 1024

HEARTBEAT_SECONDS = 15.0
MAX_MESSAGE = 1000  # characters
# listen() yields these objects: no published message "is" one.
SUBSCRIBED = object()  # first: from now on nothing is missed
OVERFLOW = {"error": "you fell behind; reconnect"}


@app.get("/events")
def events():
    return Response(
        as_events(broker.listen()),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


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
    return {"delivered_to": broker.publish(message)}


def as_events(messages, limit=None):
    """Each message as an SSE event; a comment while idle."""
    sent = 0
    with contextlib.closing(messages):  # unsubscribes
        for message in messages:
            if message is None:
                yield ": keep-alive\n\n"
            elif message is SUBSCRIBED:
                yield "event: subscribed\ndata: {}\n\n"
            elif message is OVERFLOW:
                yield f"event: overflow\ndata: {json.dumps(message)}\n\n"
                return
            else:
                yield f"event: message\ndata: {json.dumps(message)}\n\n"
                sent += 1
                if sent == limit:
                    return


class LocalBroker:
    """Fan-out inside ONE process: a bounded queue per subscriber.

    A subscriber whose queue is full is dropped, with OVERFLOW as its last
    message: the publisher never waits for the slowest reader, and a reader
    is never left with a silent gap.
    """

    def __init__(self, maxsize=100):
        self.maxsize = maxsize
        self.queues = set()
        self.lock = threading.Lock()

    def publish(self, message):
        with self.lock:
            for q in list(self.queues):
                if q.qsize() < self.maxsize:
                    q.put_nowait(message)
                else:  # full: drop it; the spare slot takes OVERFLOW
                    self.queues.discard(q)
                    q.put_nowait(OVERFLOW)
            return len(self.queues)

    def listen(self):
        """Yield SUBSCRIBED, then messages; None after a silent heartbeat."""
        q = queue.Queue(maxsize=self.maxsize + 1)
        with self.lock:
            self.queues.add(q)
        try:
            yield SUBSCRIBED
            while True:
                try:
                    message = q.get(timeout=HEARTBEAT_SECONDS)
                except queue.Empty:
                    message = None
                yield message
                if message is OVERFLOW:
                    return
        finally:
            with self.lock:
                self.queues.discard(q)


broker = LocalBroker()
# [recipe-end]

import os  # noqa: E402

import redis  # noqa: E402

from snippets.checks import whole_number  # noqa: E402
from snippets.sse import STREAM_HEADERS  # noqa: E402

MAX_LIMIT = 1000


# [redis]
class RedisBroker:
    """Fan-out across processes and machines with Redis pub/sub."""

    channel = "broadcast"

    def __init__(self, url, max_subscribers=10_000):
        # Each subscriber holds a connection of its own, and redis-py 8 caps a
        # pool at 100: the 101st stream would fail with "Too many connections".
        self.redis = redis.Redis.from_url(url, max_connections=max_subscribers + 10)

    def publish(self, message):
        return self.redis.publish(self.channel, json.dumps(message))

    def listen(self):
        pubsub = self.redis.pubsub()
        try:
            pubsub.subscribe(self.channel)
            # Redis confirms the subscription: from then on nothing is missed.
            pubsub.get_message(timeout=HEARTBEAT_SECONDS)
            yield SUBSCRIBED
            while True:
                got = pubsub.get_message(timeout=HEARTBEAT_SECONDS)
                yield json.loads(got["data"]) if got else None
        finally:
            pubsub.close()


redis_url = os.environ.get("BROADCAST_REDIS_URL")
broker = RedisBroker(redis_url) if redis_url else broker  # else the local one
# [redis-end]


# [limit]
@app.get("/stream")
def stream():
    """The same stream, ended after ``limit`` messages."""
    limit = whole_number("limit", 1, MAX_LIMIT, default=MAX_LIMIT)
    body = as_events(broker.listen(), limit)
    return Response(body, mimetype="text/event-stream", headers=STREAM_HEADERS)


# [limit-end]
