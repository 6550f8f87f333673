"""The token stream of snippets/tokens.py, written for Quart.

Serve it with an ASGI server: ``hypercorn snippets.quart:app``.
"""

# [recipe]
import asyncio

from quart import Quart, Response

app = Quart(__name__)

TOKEN_DELAY = 0.005  # seconds per token: the model "thinks"
ANSWER = "Sure.\nLine two: café, cafe\u0301 (e + U+0301), 👩‍💻, 🇫🇷, 日本語.\n"


async def fake_model(prompt):
    """A stand-in model, as an async generator: it awaits
    instead of blocking, so one event loop serves many streams."""
    data = f"You said: {prompt}\n{ANSWER}".encode()
    for start in range(0, len(data), 3):
        await asyncio.sleep(TOKEN_DELAY)
        yield data[start : start + 3]


@app.get("/hello")
async def hello():
    # Quart iterates an async generator itself: no bridge.
    tokens = fake_model("hello")
    return Response(tokens, mimetype="text/plain")


# [recipe-end]

import codecs  # noqa: E402  (the full token stream of formats/tokens)
import contextlib  # noqa: E402
import json  # noqa: E402

from quart import abort, render_template, request  # noqa: E402
from werkzeug.exceptions import HTTPException  # noqa: E402

app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # bigger: 413 when the view reads it

MAX_PROMPT = 2000  # characters
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


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
async def error_as_json(error):
    return {"error": error.description}, error.code


# [generate]
@app.post("/generate")
async def generate():
    try:
        payload = await request.get_json(silent=True)  # the body arrives async too
    except RecursionError:  # "[[[[...": nested deeper than Python recurses
        payload = None
    except UnicodeDecodeError:  # not UTF-8: Quart decodes before "silent" applies
        payload = None
    if not isinstance(payload, dict):
        abort(400, 'send JSON like {"prompt": "..."}')
    prompt = read_prompt(payload.get("prompt"))
    # An async generator is a body, as it is. If the client disconnects,
    # Quart cancels the task that sends it: the model stops at its next await.
    response = Response(fake_model(prompt), mimetype="text/plain", headers=HEADERS)
    response.timeout = None  # else Quart cuts it after RESPONSE_TIMEOUT (60 s)
    return response


# [generate-end]


# [events]
@app.get("/events")
async def events():
    prompt = read_prompt(request.args.get("prompt"), too_long=414)

    async def stream():
        decoder = codecs.getincrementaldecoder("utf-8")()
        async with contextlib.aclosing(fake_model(prompt)) as tokens:
            async for token in tokens:
                if text := decoder.decode(token):
                    yield f"event: token\ndata: {json.dumps(text)}\n\n"
        yield "event: done\ndata: {}\n\n"

    response = Response(stream(), mimetype="text/event-stream", headers=HEADERS)
    response.timeout = None
    return response


# [events-end]


@app.get("/")
async def demo():
    return await render_template("tokens_demo.html", max_prompt=MAX_PROMPT)
