"""The live hang-up tier: clients that leave mid-stream, on every server.

On each server of the matrix (Werkzeug threaded, gunicorn sync, gthread and
gevent, waitress, uWSGI, uvicorn behind a2wsgi and asgiref's WsgiToAsgi,
hypercorn), clients hang up with a FIN (close) and with a RST
(SO_LINGER 0): first in uploads (snippets/uploads.py PUT) they do not finish,
then in the middle of a fast stream, then of a slow one that never ends
(snippets/sse.py). The app is tests/site_checks/hangup_probe.py: it counts
the bodies the server opened, the ones that ran to their end and the ones it
closed, and reports the worker's threads, open files and memory from inside
it. Each phase waits until its counts settle, then asserts them exactly.

On a WSGI server every body is closed: no thread, file or memory left
growing, the server still answers, nothing stored. Behind the bridges
(docs/async/asgi_servers.rst) a stream whose client left is never closed: the
endless one is still running at the end, holding its thread, and the fast
one runs to its last line, after which a2wsgi and hypercorn call close() and
WsgiToAsgi does not. WsgiToAsgi's single thread, once an endless stream holds
it, answers nobody. Nothing is stored anywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import struct
import time

import httpx
import pytest

from tests import servers
from tests.servers import open_request, read_until, wait_until

pytestmark = pytest.mark.live

TARGET = "tests.site_checks.hangup_probe:app"
ROUNDS = 4  # hang-ups per phase and way of hanging up
SLOW = "/sse/events?every=20"  # an event every 20 ms, never ending
FAST = "/ndjson/items.ndjson?count=100000"  # about 7 MB, one line per yield
# Behind a bridge the fast stream always runs to its last line, so it is
# shorter: 1,500 lines (about 100 KB), still running when its client has
# left, which the fast phase checks after each hang-up. (5,000 lines cost the
# three bridges 50 s of CPU in all, 1,500 about 12 s.)
FAST_BRIDGED = "/ndjson/items.ndjson?count=1500"
# waitress as deploy/servers recommends for fast streams: an output buffer of
# 256 KiB and 1,000 lines (64 KB) per yield (640 MB if it ran to its end).
WAITRESS_ARGS = ("--threads=4", "--outbuf-high-watermark=262144")
FAST_WAITRESS = "/probe/fast?lines=10000000&batch=1000"
UPLOAD_SIZE = 10 * 1024 * 1024
SENT = 1024 * 1024  # of UPLOAD_SIZE, then the client leaves
# Margins that hold on a loaded 2-core machine: a leak of one thread or file
# per hang-up would pass them after 24 hang-ups only if it were tiny.
THREADS_MARGIN = 2
FDS_MARGIN = 4
RSS_MARGIN = 40 * 1024 * 1024
SETTLE_S = 30  # a loaded machine runs the bridges' fast streams slowly
COUNTS: dict[str, dict] = {}


@dataclasses.dataclass(frozen=True)
class Server:
    """What a server does when its client leaves, as measured here."""

    fast_path: str = FAST
    # A WSGI server closes the body of a stream whose client left; behind a
    # bridge nobody does (docs/async/asgi_servers.rst).
    closes_abandoned: bool = True
    # Calls close() on a body that ran to its end (WsgiToAsgi never does).
    closes_ended: bool = True
    # Calls the app for an upload cut short. waitress and WsgiToAsgi read the
    # whole body first (test_waitress_calls_the_app_only_after_the_whole_body).
    upload_reaches_app: bool = True
    # Endless streams left running per way of hanging up: each holds a
    # thread of the bridge's bounded pool (hypercorn: 6 on 2 CPUs).
    slow_rounds: int = ROUNDS
    # Threads the server may add after the warm-up: a pool's, at most.
    threads: int = THREADS_MARGIN
    # asgiref's WsgiToAsgi runs every request in one thread: once an endless
    # stream holds it, no other request is answered.
    one_thread: bool = False

    def uploads(self, n):
        """The counts after ``n`` cut uploads: each one the app saw is closed.
        (Whether its 400 ran to its end depends on whether the server's write
        to the gone client failed first, so "ended" is not counted.)"""
        seen = n if self.upload_reaches_app else 0
        statuses = {"400": seen} if seen else {}
        return {"opened": seen, "closed": seen, "running": 0, "statuses": statuses}

    def fast(self, n):
        """The counts after ``n`` fast streams whose client left."""
        ok = {"statuses": {"200": n}}
        if self.closes_abandoned:
            return {"opened": n, "ended": 0, "closed": n, "running": 0, **ok}
        closed = n if self.closes_ended else 0
        return {"opened": n, "ended": n, "closed": closed, "running": 0, **ok}


BRIDGED = {"fast_path": FAST_BRIDGED, "closes_abandoned": False, "slow_rounds": 1}
SERVERS = {
    "werkzeug": Server(),
    "gunicorn-sync": Server(),
    "gunicorn-gthread": Server(threads=4),  # its pool starts threads as needed
    "gunicorn-gevent": Server(),
    "waitress": Server(fast_path=FAST_WAITRESS, upload_reaches_app=False),
    "uwsgi": Server(),
    "uvicorn-a2wsgi": Server(**BRIDGED, threads=10),  # a2wsgi's ten threads
    "uvicorn-asgiref": Server(
        **BRIDGED, closes_ended=False, upload_reaches_app=False, one_thread=True
    ),
    # asyncio's default executor: min(32, CPUs + 4) threads, 6 here
    "hypercorn": Server(**BRIDGED, threads=min(32, (os.cpu_count() or 1) + 4)),
}


def hang_up(sock, how):
    if how == "rst":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Probe:
    """Reads ``/_probe`` over one kept-alive connection (hypercorn holds a
    connection its client closed for seconds: a new one per reading would
    count as open files)."""

    def __init__(self, url):
        self.client = httpx.Client(base_url=url, timeout=5)

    def __call__(self):
        return self.client.get("/_probe").json()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.client.close()


def settled(probe, base, want):
    """The probe once its counts, less ``base``'s, are ``want`` (or the last
    reading if that does not happen within SETTLE_S: the caller's assertion
    then says what it was)."""
    last = {}

    def done():
        nonlocal last
        with contextlib.suppress(httpx.HTTPError):
            last = probe()
        return bool(last) and delta(last, base, want) == want

    wait_until(done, timeout=SETTLE_S, interval=0.1)
    return last


KEYS = ("opened", "ended", "closed", "running", "statuses")


def delta(reading, base, keys=KEYS):
    """The counts of ``reading`` less those of ``base`` (``running`` as it is)."""
    counts = {
        k: reading[k] - base[k] for k in keys if k in {"opened", "ended", "closed"}
    }
    if "running" in keys:
        counts["running"] = reading["running"]
    if "statuses" in keys:
        now, then = reading["statuses"], base.get("statuses", {})
        counts["statuses"] = {
            k: now[k] - then.get(k, 0) for k in now if now[k] != then.get(k, 0)
        }
    return counts


def stream_and_leave(url, path, how):
    """Read the head and the first line of a stream, then hang up."""
    sock = open_request(url, path, timeout=30)
    data = read_until(sock, b"\r\n\r\n")
    while len(data) < 2048 and b"\n" not in data.partition(b"\r\n\r\n")[2][:64]:
        data += sock.recv(4096)
    hang_up(sock, how)


def unanswered_and_leave(url, path, how, wait=3.0):
    """Ask for ``path``; assert that no byte comes back in ``wait`` s; hang up."""
    sock = open_request(url, path, timeout=wait)
    with pytest.raises(TimeoutError):
        sock.recv(1)
    hang_up(sock, how)


def queues(sock):
    """(bytes the client has not had acknowledged, bytes the server has not
    read) on this connection, from the kernel's /proc/net/tcp."""

    def address(host_port):
        host, port = host_port
        return "".join(f"{int(b):02X}" for b in reversed(host.split("."))) + (
            f":{port:04X}"
        )

    mine, theirs = address(sock.getsockname()), address(sock.getpeername())
    found = {}
    with open("/proc/net/tcp") as table:
        for row in list(table)[1:]:
            local, remote, _, sizes = row.split()[1:5]
            tx, rx = (int(n, 16) for n in sizes.split(":"))
            found[local, remote] = tx, rx
    return found[mine, theirs][0], found[theirs, mine][1]


def upload_and_leave(url, name, how):
    """Send SENT of UPLOAD_SIZE bytes, wait until the server has read them
    all (so a RST does not race the server's read), then hang up."""
    sock = open_request(
        url,
        f"/up/uploads/{name}",
        method="PUT",
        headers=[f"Content-Length: {UPLOAD_SIZE}"],
        timeout=30,
    )
    sock.sendall(b"x" * SENT)
    assert wait_until(lambda: queues(sock) == (0, 0), timeout=30), queues(sock)
    hang_up(sock, how)


@contextlib.contextmanager
def serve(kind, upload_dir):
    env = {"FLASK_UPLOAD_DIR": str(upload_dir)}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        if kind == "werkzeug":
            from tests.site_checks import hangup_probe

            mp.setitem(hangup_probe.uploads.app.config, "UPLOAD_DIR", str(upload_dir))
            with servers.werkzeug_server(hangup_probe.app) as url:
                yield url
        elif kind.startswith("gunicorn-"):
            worker = kind.removeprefix("gunicorn-")
            args = ("--threads", "4") if worker == "gthread" else ()
            with servers.gunicorn(TARGET, worker_class=worker, args=args) as (url, _p):
                yield url
        elif kind == "waitress":
            with servers.waitress(TARGET, args=WAITRESS_ARGS) as url:
                yield url
        elif kind.startswith("uvicorn-"):
            # Streams left running hold threads that never end: SIGKILL soon.
            app = f"{TARGET.partition(':')[0]}:asgi_{kind.removeprefix('uvicorn-')}"
            with servers.uvicorn(app, stop_after=2) as (url, _p):
                yield url
        elif kind == "hypercorn":
            with servers.hypercorn(TARGET, "--workers", "0", stop_after=2) as (
                url,
                _p,
            ):
                yield url
        elif kind == "uwsgi":
            with servers.uwsgi(TARGET, "--threads", "4", env=env) as (ports, _p):
                yield f"http://127.0.0.1:{next(iter(ports.values()))}"


@pytest.mark.parametrize("kind", SERVERS)
def test_clients_that_hang_up(kind, tmp_path):
    """FIN and RST in unfinished uploads, fast streams and endless streams:
    each phase's bodies opened, ended, closed and still running are exactly
    what this server does (the module's docstring); threads, files and
    memory bounded; new clients answered (or, behind WsgiToAsgi's one
    thread, not); no upload stored."""
    server = SERVERS[kind]
    with serve(kind, tmp_path) as url, Probe(url) as probe:
        # One of each first: imports, thread pools and buffers settle.
        upload_and_leave(url, "warm-up.bin", "fin")
        stream_and_leave(url, server.fast_path, "fin")
        warm = {
            k: v + server.fast(1)[k]
            for k, v in server.uploads(1).items()
            if k != "statuses"
        }
        zero = dict.fromkeys(("opened", "ended", "closed"), 0)
        before = settled(probe, zero, warm)
        assert delta(before, zero, warm) == warm, before
        counts = {}

        # Uploads cut short: an answer the client never reads (400), nothing
        # stored, or, where the server reads the whole body first, no call.
        base = before
        for how in ("fin", "rst"):
            for i in range(ROUNDS):
                upload_and_leave(url, f"cut-{how}-{i}.bin", how)
        want = server.uploads(2 * ROUNDS)
        base = settled(probe, base, want)
        counts["uploads"] = delta(base, before)
        assert delta(base, before, want) == want, base

        # Fast streams: closed before their end by a WSGI server; run to
        # their last line behind a bridge, still running when the client left.
        start = base
        left = 0
        for how in ("fin", "rst"):
            for _ in range(ROUNDS):
                stream_and_leave(url, server.fast_path, how)
                left += 1
                if not server.closes_abandoned:
                    # It runs on after its client left; let it end before the
                    # next, so the probe (behind hypercorn's six threads too)
                    # answers at once.
                    now = probe()
                    assert now["ended"] - start["ended"] == left - 1, now
                    settled(probe, start, server.fast(left))
        want = server.fast(2 * ROUNDS)
        base = settled(probe, start, want)
        counts["fast"] = delta(base, start)
        assert counts["fast"] == want, base

        # Endless streams: closed by a WSGI server; left running behind a
        # bridge, one thread each (WsgiToAsgi: the first holds its only one,
        # and the second is never even started).
        start = base
        for how in ("fin", "rst"):
            for _ in range(server.slow_rounds):
                if server.one_thread and how == "rst":
                    unanswered_and_leave(url, SLOW, how)
                else:
                    stream_and_leave(url, SLOW, how)
        n = 2 * server.slow_rounds
        if server.closes_abandoned:
            want = {"opened": n, "ended": 0, "closed": n, "running": 0}
        else:
            left = 1 if server.one_thread else n
            want = {"opened": left, "ended": 0, "closed": 0, "running": left}
        want["statuses"] = {"200": want["opened"]}
        after = settled(probe, start, want)
        counts["slow"] = delta(after, start)
        assert counts["slow"] == want, after

        assert after["threads"] <= before["threads"] + server.threads, (before, after)
        assert after["fds"] <= before["fds"] + FDS_MARGIN, (before, after)
        assert after["rss"] <= before["rss"] + RSS_MARGIN, (before, after)

        if server.one_thread:
            unanswered_and_leave(url, "/ndjson/items.ndjson?count=3", "fin")
        else:  # still answering new clients, the whole stream included
            whole = httpx.get(f"{url}/ndjson/items.ndjson?count=3", timeout=10)
            assert whole.status_code == 200
            assert whole.content.count(b"\n") == 3  # U+2028 is not a line end
        if not server.closes_abandoned:  # and the endless ones run on
            time.sleep(1.5)
            assert probe()["running"] == want["running"]

        hangups = 4 * ROUNDS + 2 * server.slow_rounds
        COUNTS[kind] = {"hangups": hangups, **counts}
        print(f"\n{kind}: {COUNTS[kind]} before={before} after={after}")
    assert list(tmp_path.iterdir()) == []  # no partial upload, no .part file
