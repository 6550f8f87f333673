"""Flask under an ASGI server (uvicorn, hypercorn): a stream that still ends
when its client leaves, although the bridges never tell the generator.

    uvicorn snippets.asgi_servers:asgi_app      # asgiref's WsgiToAsgi
    uvicorn snippets.asgi_servers:a2wsgi_app    # a2wsgi's WSGIMiddleware
    hypercorn snippets.asgi_servers:app         # hypercorn's own WSGI support
"""

import asyncio
import contextvars
import threading
import time

from a2wsgi import WSGIMiddleware
from asgiref.sync import ThreadSensitiveContext
from asgiref.wsgi import WsgiToAsgi
from flask import Flask, Response, abort, request

from snippets.checks import whole_number

app = Flask(__name__)

MAX_SECONDS = 60
MAX_BODY = 64 * 1024  # NoticeDisconnect holds the request body: bound it
ENDED: dict[str, str] = {}  # stream id -> why it ended (for the tests)

# Set by NoticeDisconnect below; None under a WSGI server, which tells the
# generator itself (GeneratorExit on a failed write).
client_gone: contextvars.ContextVar = contextvars.ContextVar("client_gone")


# [ticks]
@app.get("/ticks")
def ticks():
    seconds = whole_number("seconds", 1, MAX_SECONDS, default=30)
    interval = whole_number("interval_ms", 0, 10_000, default=200) / 1000
    stream_id = request.args.get("id", "ticks")[:32]
    gone = client_gone.get(None) or threading.Event()  # never set: no bridge
    deadline = time.monotonic() + seconds  # the bound on every server

    def generate():
        why = "GeneratorExit"
        try:
            n = 0
            while not gone.is_set() and time.monotonic() < deadline:
                n += 1
                yield f"tick {n}\n"
                gone.wait(interval)  # wakes at once when the client leaves
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


# [notice]
class NoticeDisconnect:
    """ASGI middleware: a threading.Event, set when the server reports that
    the client left, is put where the WSGI view finds it (both bridges copy
    context variables into the thread that runs the app)."""

    def __init__(self, asgi_app):
        self.app = asgi_app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        gone, left = threading.Event(), asyncio.Event()
        client_gone.set(gone)
        body, size = [], 0  # read the request, then watch for the disconnect
        while not body or body[-1].get("more_body"):
            body.append(await receive())
            size += len(body[-1].get("body", b""))
            if size > MAX_BODY:  # held in memory: refuse, do not grow
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
            # WsgiToAsgi runs every request in one shared thread unless it
            # runs inside a ThreadSensitiveContext: then one per request.
            async with ThreadSensitiveContext():
                await self.app(scope, replay, send)
        finally:
            watcher.cancel()


async def too_large(send):
    headers = [(b"content-type", b"text/plain"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": b"request body too large"})


asgi_app = NoticeDisconnect(WsgiToAsgi(app))
a2wsgi_app = NoticeDisconnect(WSGIMiddleware(app))
# [notice-end]
