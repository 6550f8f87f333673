"""Slow work behind a platform's timeouts: answer at once, then keep talking
until the result is ready."""

# [recipe]
import json
import time
from concurrent.futures import ThreadPoolExecutor, wait

from flask import Flask, Response

app = Flask(__name__)

WORK_SECONDS = 20  # how long the slow work takes
HEARTBEAT_SECONDS = 15  # under every idle limit on the path
pool = ThreadPoolExecutor(max_workers=4)  # runs the work


def slow_job(seconds):
    time.sleep(seconds)  # a report, a model, a remote API
    return {"answer": 42, "took": seconds}


@app.get("/report")
def report():
    def generate():
        job = pool.submit(slow_job, WORK_SECONDS)
        yield ": started\n\n"  # the first byte, at once
        # A comment while the work runs: never silent for long.
        while not wait([job], timeout=HEARTBEAT_SECONDS).done:
            yield ": keep-alive\n\n"
        result = json.dumps(job.result())
        yield f"event: result\ndata: {result}\n\n"

    return Response(
        generate(),
        mimetype="text/event-stream",
        # No cache keeps it; nginx passes each event on at once.
        headers={
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        },
    )


# [recipe-end]

from snippets.checks import whole_number  # noqa: E402

MAX_SECONDS = 600
MAX_HEARTBEAT_MS = 60_000


# [answer]
@app.get("/answer")
def answer():
    """The naive view: nothing is sent until the work is done."""
    return slow_job(whole_number("seconds", 0, MAX_SECONDS, default=1))


# [answer-end]


# [work]
@app.get("/work")
def work():
    seconds = whole_number("seconds", 0, MAX_SECONDS, default=1)
    heartbeat_ms = whole_number("heartbeat_ms", 0, MAX_HEARTBEAT_MS, default=15_000)
    heartbeat = heartbeat_ms / 1000

    def generate():
        job = pool.submit(slow_job, seconds)
        yield ": started\n\n"  # the first byte, at once: no first-byte deadline
        # Then a comment while the work runs (heartbeat_ms=0: none, to fail).
        while heartbeat and not wait([job], timeout=heartbeat).done:
            yield ": keep-alive\n\n"
        yield f"event: result\ndata: {json.dumps(job.result())}\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(generate(), mimetype="text/event-stream", headers=headers)


# [work-end]
