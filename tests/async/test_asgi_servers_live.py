"""async/asgi_servers: the Flask app under uvicorn (through a2wsgi and
asgiref's WsgiToAsgi) and hypercorn, over real sockets: what happens to a
generator whose client left, and the pattern that still ends it."""

import contextlib
import selectors
import socket
import time
import uuid
from urllib.parse import urlsplit

import pytest

from tests.deploy_matrix import RawStream, get_json
from tests.servers import hypercorn, uvicorn, wait_until

pytestmark = pytest.mark.live

MODULE = "snippets.asgi_servers"
STOP_AFTER_S = 2  # a server with a stuck thread never exits by itself


@contextlib.contextmanager
def serve(kind):
    if kind == "uvicorn+WsgiToAsgi":
        launch = uvicorn(f"{MODULE}:asgi_app", stop_after=STOP_AFTER_S)
    elif kind == "uvicorn+a2wsgi":
        launch = uvicorn(f"{MODULE}:a2wsgi_app", stop_after=STOP_AFTER_S)
    elif kind == "hypercorn+WsgiToAsgi":
        launch = hypercorn(
            f"{MODULE}:asgi_app", "--workers", "0", stop_after=STOP_AFTER_S
        )
    else:  # hypercorn's own WSGI support: no ASGI middleware in between
        launch = hypercorn(f"{MODULE}:app", "--workers", "0", stop_after=STOP_AFTER_S)
    with launch as (url, _proc):
        yield url


def leave_after_one_tick(url, seconds):
    stream_id = uuid.uuid4().hex[:16]
    with RawStream(url, f"/ticks?seconds={seconds}&id={stream_id}") as stream:
        assert next(stream.lines())[0] == "tick 1"
    return stream_id, time.monotonic()


def ended(url, stream_id):
    with contextlib.suppress(OSError):  # 404 until it ends
        return get_json(f"{url}/ended/{stream_id}", timeout=2)["why"]
    return None


@pytest.mark.parametrize(
    "kind", ["uvicorn+WsgiToAsgi", "uvicorn+a2wsgi", "hypercorn+WsgiToAsgi"]
)
def test_notice_disconnect_ends_the_stream_when_the_client_leaves(kind):
    """Behind NoticeDisconnect the generator learns within a second that its
    client left, long before its 30 s deadline."""
    with serve(kind) as url:
        stream_id, left = leave_after_one_tick(url, seconds=30)
        assert wait_until(lambda: ended(url, stream_id), timeout=10)
        assert ended(url, stream_id) == "client gone"
        assert time.monotonic() - left < 5


def test_hypercorn_wsgi_stream_ends_at_its_deadline():
    """hypercorn serving the WSGI app itself: nothing tells the generator, so
    only the deadline ends it (2 s here), not the client leaving."""
    with serve("hypercorn+wsgi") as url:
        stream_id, left = leave_after_one_tick(url, seconds=2)
        time.sleep(1)
        assert ended(url, stream_id) is None  # the client left 1 s ago
        assert wait_until(lambda: ended(url, stream_id), timeout=10)
        assert ended(url, stream_id) == "deadline"
        assert time.monotonic() - left >= 2 - 0.5


def count_served(url, tried=12, window=1.5):
    """Open `tried` ten-second streams at once; count first bytes in time."""
    parts = urlsplit(url)
    socks, selector = [], selectors.DefaultSelector()
    try:
        for n in range(tried):
            sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
            path = f"/ticks?seconds=10&interval_ms=200&id=many{n}"
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            socks.append(sock)
            selector.register(sock, selectors.EVENT_READ)
        served = set()
        deadline = time.monotonic() + window
        while len(served) < tried and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(timeout=left):
                served.add(key.fileobj)
                selector.unregister(key.fileobj)
        return len(served)
    finally:
        selector.close()
        for sock in socks:
            sock.close()


def test_thread_sensitive_context_gives_wsgitoasgi_a_thread_per_request():
    """Bare WsgiToAsgi serves one stream at a time (deploy/servers: 1 of 12);
    inside ThreadSensitiveContext every request gets its own thread."""
    with serve("uvicorn+WsgiToAsgi") as url:
        assert count_served(url) == 12
