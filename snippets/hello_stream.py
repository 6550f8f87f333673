"""Streaming responses: a generator becomes the body, one chunk per yield."""

from flask import Flask, Response, abort, request

app = Flask(__name__)

MAX_COUNT = 10_000


# [count]
@app.get("/count")
def count():
    # Validate before the stream starts: a 400 is still possible here.
    raw = request.args.get("n", "3")
    try:
        n = int(raw)
    except ValueError:
        abort(400, f"n must be a whole number from 1 to {MAX_COUNT}")
    # int() also reads " 3", "+3" and other scripts' digits: ASCII digits only.
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= n <= MAX_COUNT:
        abort(400, f"n must be a whole number from 1 to {MAX_COUNT}")

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
