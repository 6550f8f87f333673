"""LLM-style token streaming: POST a prompt, read the answer as it is made,
and stop the model when the reader leaves."""

# [recipe]
import contextlib
import time

from flask import Flask, Response, abort, request
from werkzeug.exceptions import HTTPException

app = Flask(__name__)
# A bigger body is a 413 when the view reads it.
app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
MAX_PROMPT = 2000  # characters
TOKEN_DELAY = 0.005  # seconds per token: the model "thinks"
ANSWER = "Sure.\nLine two: café, cafe\u0301 (e + U+0301), 👩‍💻, 🇫🇷, 日本語.\n"
# No cache keeps the answer, and nginx passes tokens on.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def fake_model(prompt):
    """A deterministic stand-in for a model. Like a byte-level tokenizer, it
    yields bytes, and a token can end in the middle of a UTF-8 character:

    >>> [token for token in fake_model("hi")][:4]
    [b'You', b' sa', b'id:', b' hi']
    >>> "👩".encode()
    b'\\xf0\\x9f\\x91\\xa9'
    """
    data = f"You said: {prompt}\n{ANSWER}".encode()
    for start in range(0, len(data), 3):
        time.sleep(TOKEN_DELAY)
        yield data[start : start + 3]


@app.post("/generate")
def generate():
    try:
        payload = request.get_json(silent=True)  # None if not JSON
    except RecursionError:  # "[[[[...": deeper than Python recurses
        payload = None
    if not isinstance(payload, dict):
        abort(400, 'send JSON like {"prompt": "..."}')
    prompt = read_prompt(payload.get("prompt"))

    def stream():
        # When the client leaves, the server closes this generator;
        # closing() then closes the model's stream: generation stops.
        with contextlib.closing(fake_model(prompt)) as tokens:
            yield from tokens

    return Response(stream(), mimetype="text/plain", headers=HEADERS)


def read_prompt(value, too_long=413):
    if not isinstance(value, str) or not value.strip():
        abort(400, 'send a non-empty "prompt"')
    if len(value) > MAX_PROMPT:
        abort(too_long, f"prompt is longer than {MAX_PROMPT} characters")
    try:
        value.encode()  # JSON's "\ud800" is a str that UTF-8 cannot encode
    except UnicodeEncodeError:
        abort(400, "prompt must be text that UTF-8 can encode")
    return value


@app.errorhandler(HTTPException)
def error_as_json(error):
    # The page's fetch() shows this message to the user.
    return {"error": error.description}, error.code


# [recipe-end]

import codecs  # noqa: E402
import json  # noqa: E402

from flask import render_template  # noqa: E402

from snippets.sse import STREAM_HEADERS, encode  # noqa: E402


# [events]
@app.get("/events")
def events():
    # EventSource can only GET: the prompt travels in the query string.
    prompt = read_prompt(request.args.get("prompt"), too_long=414)

    def stream():
        # JSON needs whole characters: decode the bytes incrementally, so a
        # token that ends mid-character waits for the next one.
        decoder = codecs.getincrementaldecoder("utf-8")()
        with contextlib.closing(fake_model(prompt)) as tokens:
            for token in tokens:
                if text := decoder.decode(token):
                    # ASCII JSON: the same bytes as snippets/quart.py
                    yield encode(json.dumps(text), event="token")
        # Tell the page to close: otherwise EventSource reconnects and asks
        # the same question again.
        yield encode("{}", event="done")

    return Response(stream(), mimetype="text/event-stream", headers=STREAM_HEADERS)


# [events-end]


@app.get("/")
def demo():
    return render_template("tokens_demo.html", max_prompt=MAX_PROMPT)
