"""The app the live hang-up tier serves: four snippets behind one counter.

``/ndjson/...`` is snippets/ndjson.py (a fast stream, one line per yield),
``/probe/...`` is snippets/servers.py (its ``/fast?batch=1000`` is the
fast stream deploy/servers recommends under waitress), ``/sse/...`` is
snippets/sse.py (a slow one, never ending), ``/up/...`` is
snippets/uploads.py. Every response iterable is wrapped, so ``/_probe`` can
say how many bodies the server opened, how many ran to their end, how many it
closed and how many are still yielding, with their statuses and this
worker's threads, open files and memory (psutil), measured from inside the
process that serves them.

Behind the two WSGI-to-ASGI bridges ``/_probe`` is answered by the event loop
itself, not through the bridge: asgiref's ``WsgiToAsgi`` runs every request
in one thread, so once an abandoned stream holds it, a probe behind the
bridge could never answer.
"""

import json
import threading
import time
import weakref

import psutil
from a2wsgi import WSGIMiddleware
from asgiref.wsgi import WsgiToAsgi
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from snippets import ndjson, sse, uploads
from snippets import servers as server_probe

COUNTS = {"opened": 0, "ended": 0, "closed": 0}
STATUSES: dict[str, int] = {}  # "400": how many responses had that status
LOCK = threading.Lock()
OPEN: "weakref.WeakSet[Counted]" = weakref.WeakSet()  # not closed, not ended
RECENT_S = 1.0  # "still running": yielded within the last second


class Counted:
    """A response body that counts its end and its close(), then closes the
    real one."""

    def __init__(self, body):
        self.body = body
        self.last_yield = time.monotonic()
        with LOCK:
            COUNTS["opened"] += 1
            OPEN.add(self)

    def __iter__(self):
        for chunk in self.body:
            self.last_yield = time.monotonic()
            yield chunk
        with LOCK:
            COUNTS["ended"] += 1
            OPEN.discard(self)

    def close(self):
        with LOCK:
            COUNTS["closed"] += 1
            OPEN.discard(self)
        if hasattr(self.body, "close"):
            self.body.close()


def counted(wsgi_app):
    def app(environ, start_response):
        def start(status, headers, exc_info=None):
            with LOCK:
                STATUSES[status[:3]] = STATUSES.get(status[:3], 0) + 1
            return start_response(status, headers, exc_info)

        return Counted(wsgi_app(environ, start))

    return app


def readings():
    me = psutil.Process()
    now = time.monotonic()
    with LOCK:
        running = sum(now - body.last_yield < RECENT_S for body in OPEN)
        counts = dict(COUNTS)
        statuses = dict(STATUSES)
    return json.dumps(
        {
            **counts,
            "statuses": statuses,
            "running": running,
            "threads": me.num_threads(),
            "fds": me.num_fds(),
            "rss": me.memory_info().rss,
        }
    ).encode()


def probe(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [readings()]


app = DispatcherMiddleware(
    probe,
    {
        "/ndjson": counted(ndjson.app),
        "/probe": counted(server_probe.app),
        "/sse": counted(sse.app),
        "/up": counted(uploads.app),
    },
)


def probe_in_the_loop(bridged):
    """An ASGI app: ``/_probe`` from the event loop, the rest to ``bridged``."""

    async def asgi(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/_probe":
            headers = [(b"content-type", b"application/json")]
            await send(
                {"type": "http.response.start", "status": 200, "headers": headers}
            )
            await send({"type": "http.response.body", "body": readings()})
        else:
            await bridged(scope, receive, send)

    return asgi


# The same app behind the two WSGI-to-ASGI bridges, for uvicorn.
asgi_a2wsgi = probe_in_the_loop(WSGIMiddleware(app))
asgi_asgiref = probe_in_the_loop(WsgiToAsgi(app))
