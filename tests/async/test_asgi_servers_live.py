"""async/asgi_servers: the Flask app under uvicorn (through a2wsgi and
asgiref's WsgiToAsgi) and hypercorn, over real sockets: what happens to a
generator whose client left, and the pattern that still ends it."""

import contextlib
import os
import selectors
import socket
import time
import uuid
from urllib.parse import urlsplit

import psutil
import pytest

from tests.deploy_matrix import RawStream, get_json
from tests.servers import hypercorn, uvicorn, uvicorn_app, wait_until

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


# -- full pools: clients that leave mid-stream (issue 22, item 10) ----------

POOL_SECONDS = 3  # each stream's deadline: the longest a thread is held here
PROBE_WINDOW_S = 1.0  # the first streams still have 1.5 s to run by then
POOLS = {  # threads that run the WSGI app, and the clients that leave
    "uvicorn+a2wsgi": (10, 20),  # a2wsgi's WSGIMiddleware(workers=10)
    "hypercorn": (min(32, (os.cpu_count() or 1) + 4), 16),  # asyncio's executor
    "uvicorn+WsgiToAsgi": (1, 4),  # one thread-sensitive thread
}


def serve_bare(kind):
    """The app behind each bridge as it comes, without NoticeDisconnect."""
    if kind == "uvicorn+a2wsgi":
        return uvicorn_app(f"{MODULE}:app", bridge="a2wsgi")
    if kind == "uvicorn+WsgiToAsgi":
        return uvicorn_app(f"{MODULE}:app", bridge="asgiref")
    return hypercorn(f"{MODULE}:app", "--workers", "0", stop_after=STOP_AFTER_S)


def send_get(url, path):
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    return sock


def answered_within(url, path, seconds):
    with contextlib.closing(send_get(url, path)) as sock:
        sock.settimeout(seconds)
        try:
            return bool(sock.recv(64))
        except TimeoutError:
            return False


def fill_the_pool_and_leave(url, clients):
    """Open ``clients`` streams at once, see which get a first byte within
    1.5 s, then every client hangs up: the served mid-stream, the others
    while they still wait in the queue. Returns (ids, served, client ports)."""
    run = uuid.uuid4().hex[:8]
    ids = [f"{run}{n}" for n in range(clients)]
    socks = [
        send_get(url, f"/ticks?seconds={POOL_SECONDS}&interval_ms=200&id={i}")
        for i in ids
    ]
    ports = {sock.getsockname()[1] for sock in socks}
    served, selector = set(), selectors.DefaultSelector()
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
    deadline = time.monotonic() + 1.5
    while len(served) < clients and (left := deadline - time.monotonic()) > 0:
        for key, _ in selector.select(timeout=left):
            served.add(key.fileobj)
            selector.unregister(key.fileobj)
    selector.close()
    for sock in socks:
        sock.close()
    return ids, len(served), ports


def departed_sockets(proc, ports):
    """The server's TCP sockets whose peer is a client that has gone."""
    connections = psutil.Process(proc.pid).net_connections("tcp")
    return [c for c in connections if c.raddr and c.raddr.port in ports]


def why_each_ended(url, ids):
    return [ended(url, stream_id) for stream_id in ids]


@pytest.mark.parametrize("kind", list(POOLS))
def test_a_pool_full_of_abandoned_streams_answers_no_new_request(kind):
    """Every client leaves (the first ``threads`` mid-stream, the rest while
    queued). The pool stays full: a new request gets no byte in 1 s. The
    requests whose clients left in the queue still run, each to its
    deadline, for nobody; only then is the new request answered. hypercorn
    keeps each queued client's socket open (CLOSE_WAIT) until then; uvicorn
    closes them. The measured numbers are the page's."""
    threads, clients = POOLS[kind]
    with serve_bare(kind) as (url, proc):
        ids, served, ports = fill_the_pool_and_leave(url, clients)
        assert served == threads
        assert not answered_within(url, "/ended/nobody", PROBE_WINDOW_S)
        held = departed_sockets(proc, ports)  # 1 s after the clients left
        drain = POOL_SECONDS * -(-clients // threads) + 10
        assert wait_until(lambda: answered_within(url, "/ended/nobody", 2), drain)
        assert wait_until(lambda: None not in why_each_ended(url, ids), drain)
        assert why_each_ended(url, ids) == ["deadline"] * clients
        if kind == "hypercorn":
            assert len(held) == clients - threads
            assert {c.status for c in held} == {psutil.CONN_CLOSE_WAIT}
        else:
            assert held == []
        assert departed_sockets(proc, ports) == []


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("uvicorn+a2wsgi", "a2wsgi_app"),
        ("hypercorn", "asgi_app"),
        ("uvicorn+WsgiToAsgi", "asgi_app"),
    ],
)
def test_notice_disconnect_frees_the_pool_when_clients_leave(kind, target):
    """The same clients in front of NoticeDisconnect: every stream ends
    "client gone" (a queued one without a tick), and a new request is
    answered within the same 1 s."""
    _threads, clients = POOLS[kind]
    if kind.startswith("uvicorn"):
        launch = uvicorn(f"{MODULE}:{target}", stop_after=STOP_AFTER_S)
    else:
        launch = hypercorn(
            f"{MODULE}:{target}", "--workers", "0", stop_after=STOP_AFTER_S
        )
    with launch as (url, _proc):
        ids, _served, _ports = fill_the_pool_and_leave(url, clients)
        assert answered_within(url, "/ended/nobody", PROBE_WINDOW_S)
        assert wait_until(lambda: None not in why_each_ended(url, ids), 10)
        assert why_each_ended(url, ids) == ["client gone"] * clients
