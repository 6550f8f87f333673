"""Request data inside a streaming generator: three ways, one mistake."""

from flask import Flask, Response, request, stream_with_context

app = Flask(__name__)


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


# [passed]
@app.get("/passed")
def passed():
    name = request.args.get("name", "stranger")  # read in the view

    def generate(name):
        yield "Hello "
        yield name

    return Response(generate(name), mimetype="text/plain")


# [passed-end]
