"""Flask under an ASGI server (uvicorn, hypercorn): a stream that still ends
when its client leaves, although the bridges never tell the generator.

    uvicorn snippets.asgi_servers:a2wsgi_app    # a2wsgi's WSGIMiddleware
    uvicorn snippets.asgi_servers:asgi_app      # asgiref's WsgiToAsgi
    hypercorn snippets.asgi_servers:asgi_app    # the same, under hypercorn
"""

# [recipe]
import asyncio
import contextvars
import threading
import time

from a2wsgi import WSGIMiddleware
from asgiref.sync import ThreadSensitiveContext
from asgiref.wsgi import WsgiToAsgi
from flask import Flask, Response

app = Flask(__name__)

SECONDS = 30  # every stream ends by then, on every server
MAX_BODY = 64 * 1024  # the request body NoticeDisconnect holds
# Set by NoticeDisconnect when the client leaves.
client_gone = contextvars.ContextVar("client_gone")


@app.get("/")
def clock():
    gone = client_gone.get(None) or threading.Event()
    deadline = time.monotonic() + SECONDS
    lines = ticks(gone, deadline, interval=1.0)
    return Response(lines, mimetype="text/plain")


def ticks(gone, deadline, interval):
    """Tick until the deadline or until ``gone`` is set."""
    n = 0
    while not gone.is_set() and time.monotonic() < deadline:
        n += 1
        yield f"tick {n}\n"
        gone.wait(interval)  # wakes at once if the client left


class NoticeDisconnect:
    """ASGI middleware: sets an Event when the server says
    the client left, where the WSGI view finds it."""

    def __init__(self, asgi_app):
        self.app = asgi_app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        gone, left = threading.Event(), asyncio.Event()
        client_gone.set(gone)
        body, size = [], 0  # the request, then the disconnect
        while not body or body[-1].get("more_body"):
            body.append(await receive())
            size += len(body[-1].get("body", b""))
            if size > MAX_BODY:  # held in memory: refuse it
                return await too_large(send)

        async def watch():
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()
            left.set()

        async def replay():
            if body:
                return body.pop(0)
            await left.wait()
            return {"type": "http.disconnect"}

        watcher = asyncio.ensure_future(watch())
        try:
            # WsgiToAsgi: one thread per request inside this
            # context, else one thread for the whole process.
            async with ThreadSensitiveContext():
                await self.app(scope, replay, send)
        finally:
            watcher.cancel()


async def too_large(send):
    await send({
        "type": "http.response.start",
        "status": 413,
        "headers": [(b"content-type", b"text/plain")],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": b"too large"})


a2wsgi_app = NoticeDisconnect(WSGIMiddleware(app))
asgi_app = NoticeDisconnect(WsgiToAsgi(app))
# [recipe-end]

from flask import abort, request  # noqa: E402  (the variants below)

from snippets.checks import whole_number  # noqa: E402

MAX_SECONDS = 60
ENDED: dict[str, str] = {}  # stream id -> why it ended (for the tests)


# [ticks]
@app.get("/ticks")
def ticks_view():
    seconds = whole_number("seconds", 1, MAX_SECONDS, default=30)
    interval = whole_number("interval_ms", 0, 10_000, default=200) / 1000
    stream_id = request.args.get("id", "ticks")[:32]
    gone = client_gone.get(None) or threading.Event()  # never set: no bridge
    deadline = time.monotonic() + seconds  # the bound on every server

    def generate():
        why = "GeneratorExit"
        try:
            yield from ticks(gone, deadline, interval)
            why = "client gone" if gone.is_set() else "deadline"
        finally:
            ENDED[stream_id] = why

    return Response(generate(), mimetype="text/plain")


# [ticks-end]


@app.get("/ended/<stream_id>")
def ended(stream_id):
    if stream_id not in ENDED:
        abort(404, "that stream has not ended (yet)")
    return {"why": ENDED[stream_id]}
