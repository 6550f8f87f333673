"""Headers and compression that keep a stream flowing through nginx, gzip and
browsers: events that arrive when they are sent, not when the stream ends."""

import json
import time
import zlib

from flask import Flask, Response, request

from snippets.checks import whole_number

app = Flask(__name__)

MAX_COUNT = 1_000
MAX_MS = 60_000

# [headers]
STREAM_HEADERS = {
    "Cache-Control": "no-cache",  # no cache or proxy may store or merge it
    "X-Accel-Buffering": "no",  # nginx: pass each chunk on as it arrives
    "X-Content-Type-Options": "nosniff",  # browsers: render now, do not sniff
}
# [headers-end]


# [events]
@app.get("/events")
def events():
    count = whole_number("count", 1, MAX_COUNT, default=3)
    interval = whole_number("interval_ms", 0, MAX_MS, default=1000) / 1000
    # 0: no heartbeat
    heartbeat = whole_number("heartbeat_ms", 0, MAX_MS, default=15_000) / 1000

    def generate():
        for n in range(1, count + 1):
            if n > 1:
                yield from wait(interval, heartbeat)
            event = {"n": n, "sent": time.time()}
            yield f"id: {n}\ndata: {json.dumps(event)}\n\n"

    headers = dict(STREAM_HEADERS, Vary="Accept-Encoding")
    body = generate()
    if request.accept_encodings["gzip"]:  # quality 0 or absent: plain
        headers["Content-Encoding"] = "gzip"
        body = gzip_stream(body)
    return Response(body, mimetype="text/event-stream", headers=headers)


def wait(seconds, heartbeat):
    """Sleep, sending an SSE comment every ``heartbeat`` seconds meanwhile:
    proxies see traffic, and a vanished client is noticed on the next write."""
    deadline = time.monotonic() + seconds
    while heartbeat and time.monotonic() + heartbeat < deadline:
        time.sleep(heartbeat)
        yield ": keep-alive\n\n"
    time.sleep(max(0.0, deadline - time.monotonic()))


# [events-end]


# [gzip]
def gzip_stream(chunks):
    """gzip that streams: Z_SYNC_FLUSH ends every chunk on a byte boundary,
    so the client can decompress each event the moment it arrives."""
    compressor = zlib.compressobj(wbits=31)  # 16 + 15: gzip header and trailer
    for chunk in chunks:
        yield compressor.compress(chunk.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
    yield compressor.flush()  # Z_FINISH: the gzip trailer (CRC-32 and size)


# [gzip-end]


# [plain]
@app.get("/progress")
def progress():
    steps = whole_number("steps", 1, MAX_COUNT, default=3)
    interval = whole_number("interval_ms", 0, MAX_MS, default=1000) / 1000

    def generate():
        for step in range(1, steps + 1):
            if step > 1:
                time.sleep(interval)
            yield f"step {step} of {steps} at {time.time():.3f}\n"

    return Response(generate(), mimetype="text/plain", headers=STREAM_HEADERS)


# [plain-end]
