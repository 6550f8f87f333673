"""Request data inside a streaming generator: three ways, one mistake."""

# [recipe]
from flask import Flask, Response, request

app = Flask(__name__)


@app.get("/passed")
def passed():
    # Read in the view, while the request is active:
    name = request.args.get("name", "stranger")

    def generate(name):  # runs after the view: no request
        yield "Hello "
        yield name

    return Response(generate(name), mimetype="text/plain")


# [recipe-end]

from flask import stream_with_context  # noqa: E402


# Fails on purpose: request is gone by the time the body is made.
# [broken]
@app.get("/broken")
def broken():
    def generate():
        yield "Hello "
        yield request.args.get("name", "stranger")  # no request here any more

    return Response(generate(), mimetype="text/plain")


# [broken-end]


# [wrapped]
@app.get("/wrapped")
def wrapped():
    def generate():
        yield "Hello "
        yield request.args.get("name", "stranger")

    return Response(stream_with_context(generate()), mimetype="text/plain")


# [wrapped-end]


# [decorated]
@app.get("/decorated")
def decorated():
    @stream_with_context
    def generate():
        yield "Hello "
        yield request.args.get("name", "stranger")

    return Response(generate(), mimetype="text/plain")


# [decorated-end]
