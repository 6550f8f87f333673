"""The app the live hang-up tier serves: three snippets behind one counter.

``/ndjson/...`` is snippets/ndjson.py (a fast stream), ``/sse/...`` is
snippets/sse.py (a slow one), ``/up/...`` is snippets/uploads.py. Every
response iterable is wrapped, so ``/_probe`` can say how many bodies the
server opened and how many it closed, with this worker's threads, open files
and memory (psutil), measured from inside the process that serves them.
"""

import json
import threading

import psutil
from a2wsgi import WSGIMiddleware
from asgiref.wsgi import WsgiToAsgi
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from snippets import ndjson, sse, uploads

COUNTS = {"opened": 0, "closed": 0}
LOCK = threading.Lock()


class Counted:
    """A response body that counts its close(), then closes the real one."""

    def __init__(self, body):
        self.body = body
        with LOCK:
            COUNTS["opened"] += 1

    def __iter__(self):
        return iter(self.body)

    def close(self):
        with LOCK:
            COUNTS["closed"] += 1
        if hasattr(self.body, "close"):
            self.body.close()


def counted(wsgi_app):
    def app(environ, start_response):
        return Counted(wsgi_app(environ, start_response))

    return app


def probe(environ, start_response):
    me = psutil.Process()
    body = json.dumps(
        {
            **COUNTS,
            "threads": me.num_threads(),
            "fds": me.num_fds(),
            "rss": me.memory_info().rss,
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


app = DispatcherMiddleware(
    probe,
    {
        "/ndjson": counted(ndjson.app),
        "/sse": counted(sse.app),
        "/up": counted(uploads.app),
    },
)

# The same app behind the two WSGI-to-ASGI bridges, for uvicorn.
asgi_a2wsgi = WSGIMiddleware(app)
asgi_asgiref = WsgiToAsgi(app)
