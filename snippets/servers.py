"""A probe for WSGI servers: does this server stream, and when does it notice
that the client has gone? The server matrix on deploy/servers measures every
server with this app, and the ASGI servers through the two bridges at the end."""

import os
import resource
import threading
import time
from collections import deque

from a2wsgi import WSGIMiddleware
from asgiref.wsgi import WsgiToAsgi
from flask import Flask, Response, abort, jsonify, request

from snippets.checks import whole_number

app = Flask(__name__)

MAX_CHUNKS = 100_000
MAX_LINES = 10_000_000
MAX_INTERVAL_MS = 10_000
KEEP_RECORDS = 1_000

_lock = threading.Lock()
_ended: deque = deque(maxlen=KEEP_RECORDS)  # (probe id, how it ended)
_closed: deque = deque(maxlen=KEEP_RECORDS)  # probe ids whose response was closed
_open = {"streams": 0}


def probe_id():
    probe = request.args.get("id", "anonymous")
    if not (probe.isascii() and probe.isalnum() and len(probe) <= 32):
        abort(400, "id must be 1 to 32 ASCII letters or digits")
    return probe


# [stream]
@app.get("/stream")
def stream():
    chunks = whole_number("chunks", 1, MAX_CHUNKS, default=3)
    interval = whole_number("interval_ms", 0, MAX_INTERVAL_MS, default=100) / 1000
    probe = probe_id()

    def generate():
        sent, how = 0, "completed"
        opened()
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

    return probe_response(generate(), probe)


# [stream-end]


# [fast]
@app.get("/fast")
def fast():
    lines = whole_number("lines", 1, MAX_LINES, default=1000)
    batch = whole_number("batch", 1, 10_000, default=1)  # lines per yield
    probe = probe_id()

    def generate():
        sent, how = 0, "completed"
        opened()
        try:
            for first in range(1, lines + 1, batch):
                last = min(first + batch, lines + 1)
                # 64 bytes a line, no pause at all
                yield "".join(f"{n:09d} {'x' * 53}\n" for n in range(first, last))
                sent = last - 1
        except GeneratorExit:
            how = "GeneratorExit"
            raise
        finally:
            record(probe, how=how, sent=sent, at=time.time())

    return probe_response(generate(), probe)


# [fast-end]


def probe_response(body, probe):
    response = Response(
        body,
        mimetype="text/plain",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
    # Runs when the server calls close() on the response, as WSGI requires.
    response.call_on_close(lambda: closed(probe))
    return response


def opened():
    with _lock:
        _open["streams"] += 1


def record(probe, **ending):
    with _lock:
        _open["streams"] -= 1
        _ended.append((probe, ending))  # a full deque forgets the oldest


def closed(probe):
    with _lock:
        _closed.append(probe)


# [ended]
@app.get("/ended")
def ended():
    probe = probe_id()
    with _lock:
        ending = next((e for p, e in reversed(_ended) if p == probe), None)
        response_closed = probe in _closed
    if ending is None:
        abort(404, f"stream {probe!r} has not ended (yet)")
    return jsonify({**ending, "response_closed": response_closed})


# [ended-end]


# [stats]
@app.get("/stats")
def stats():
    """What the server process holds right now."""
    with _lock:
        streams = _open["streams"]
    with open("/proc/self/statm") as statm:  # Linux: sizes in pages
        resident_pages = int(statm.read().split()[1])
    return {
        "open_streams": streams,  # generators started and not yet ended
        "threads": threading.active_count(),
        "open_files": len(os.listdir("/proc/self/fd")),
        "rss_kib": resident_pages * resource.getpagesize() // 1024,
        "pid": os.getpid(),
    }


# [stats-end]


# [asgi]
# The same app for ASGI servers, through each bridge:
#   uvicorn snippets.servers:a2wsgi_app
#   uvicorn snippets.servers:asgiref_app
a2wsgi_app = WSGIMiddleware(app)
asgiref_app = WsgiToAsgi(app)
# [asgi-end]
