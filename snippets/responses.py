"""Streaming responses: a generator becomes the body, one chunk per yield."""

# [recipe]
import time

from flask import Flask, Response

app = Flask(__name__)

LINES = 3  # how many lines the stream sends
PAUSE = 0.5  # seconds of "work" between two lines


@app.get("/stream")
def stream():
    def generate():
        for i in range(1, LINES + 1):
            yield f"line {i}\n"  # goes out at once
            time.sleep(PAUSE)  # stand-in for slow work

    return Response(generate(), mimetype="text/plain")


# [recipe-end]

from snippets.checks import whole_number  # noqa: E402

MAX_COUNT = 10_000


# [count]
@app.get("/count")
def count():
    n = whole_number("n", 1, MAX_COUNT, default=3)

    def generate():
        for i in range(1, n + 1):
            yield f"line {i}\n"

    return Response(generate(), mimetype="text/plain")


# [count-end]


# [shortcuts]
@app.get("/bare")
def bare():
    # A generator returned as it is becomes a streamed text/html response.
    return (word for word in ["streamed ", "without ", "Response"])


@app.get("/with-headers")
def with_headers():
    def generate():
        yield "a,b\n"
        yield "1,2\n"

    # (body, headers): the headers are added to the streamed response.
    return generate(), {"Content-Type": "text/csv", "X-Accel-Buffering": "no"}


# [shortcuts-end]


# [bytes]
@app.get("/bytes")
def raw_bytes():
    def generate():
        yield b"\x89PNG"  # bytes go out untouched
        yield "é"  # str is encoded as UTF-8
        yield ""  # an empty chunk writes nothing at all

    return Response(generate(), mimetype="application/octet-stream")


# [bytes-end]
