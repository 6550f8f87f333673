"""A probe for WSGI servers: does this server stream, and when does it notice
that the client has gone? The server matrix on deploy/servers measures every
server with this app."""

import threading
import time
from collections import deque

from flask import Flask, Response, abort, jsonify, request

app = Flask(__name__)

MAX_CHUNKS = 100_000
MAX_INTERVAL_MS = 10_000
KEEP_RECORDS = 1_000

_lock = threading.Lock()
_ended: deque = deque(maxlen=KEEP_RECORDS)  # (probe id, how it ended)


def whole_number(name, default, low, high):
    try:
        number = int(request.args.get(name, default))
    except ValueError:
        abort(400, f"{name} must be a whole number from {low} to {high}")
    if not low <= number <= high:
        abort(400, f"{name} must be a whole number from {low} to {high}")
    return number


def probe_id():
    probe = request.args.get("id", "anonymous")
    if not (probe.isascii() and probe.isalnum() and len(probe) <= 32):
        abort(400, "id must be 1 to 32 ASCII letters or digits")
    return probe


# [stream]
@app.get("/stream")
def stream():
    chunks = whole_number("chunks", 3, 1, MAX_CHUNKS)
    interval = whole_number("interval_ms", 100, 0, MAX_INTERVAL_MS) / 1000
    probe = probe_id()

    def generate():
        sent, how = 0, "completed"
        try:
            for sent in range(1, chunks + 1):
                if sent > 1:
                    time.sleep(interval)
                # Each chunk says when it was made: a client on the same
                # machine compares that with when it arrived.
                yield f"{sent} {time.time():.6f}\n"
        except GeneratorExit:  # the server closed us: the client is gone
            how = "GeneratorExit"
            raise
        finally:
            record(probe, how=how, sent=sent, at=time.time())

    return Response(
        generate(),
        mimetype="text/plain",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


# [stream-end]


def record(probe, **ending):
    with _lock:
        _ended.append((probe, ending))  # a full deque forgets the oldest


# [ended]
@app.get("/ended")
def ended():
    probe = probe_id()
    with _lock:
        ending = next((e for p, e in reversed(_ended) if p == probe), None)
    if ending is None:
        abort(404, f"stream {probe!r} has not ended (yet)")
    return jsonify(ending)


# [ended-end]
