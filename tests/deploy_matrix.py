"""Measure what each WSGI server does with a streamed response.

``python -m tests.deploy_matrix`` starts every server on 127.0.0.1, measures
it with ``snippets/server_probe.py`` and writes ``docs/deploy/_data/servers.json``
(every value) and ``servers.csv`` (the table on deploy/servers).
``tests/deploy/test_servers_live.py`` measures again and asserts that every
cell still equals the committed file, so the table cannot drift.

The same raw HTTP client serves ``tests/deploy/test_proxies_live.py``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

from snippets.server_probe import app as probe_app
from tests.servers import gunicorn, waitress, werkzeug_server

DATA = Path(__file__).resolve().parent.parent / "docs" / "deploy" / "_data"
TARGET = "snippets.server_probe:app"

HEARTBEAT_MS = 200  # how often the probe writes while we wait for a disconnect
TIMEOUT_S = 2  # gunicorn --timeout / waitress --channel-timeout for the long stream
LONG_CHUNKS, LONG_INTERVAL_MS = 2, 4000  # 4 s of silence, longer than TIMEOUT_S
TRIED = 12  # slow streams opened at once
THREADS = 4  # --threads for gunicorn gthread and waitress
WINDOW_S = 1.5  # a stream that has sent nothing by then is waiting for a worker


# -- a bare HTTP/1.1 client that shows the framing and when each byte came ----


class RawStream:
    """A GET sent over a plain socket, read as it arrives.

    ``pieces()`` yields ``(data, arrival time)`` per chunk (chunked), per read
    (a body that ends when the connection closes) and sets ``complete`` only
    if the body ended the way its framing says it should.
    """

    def __init__(self, url, path, headers=None, timeout=10.0):
        parts = urlsplit(url)
        self.netloc = parts.netloc
        self.sock = socket.create_connection(
            (parts.hostname, parts.port), timeout=timeout
        )
        self.reader = self.sock.makefile("rb")
        self.complete = False
        self.send(path, headers)

    def send(self, path, headers=None):
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        request = f"GET {path} HTTP/1.1\r\nHost: {self.netloc}\r\n{extra}\r\n"
        self.sock.sendall(request.encode())
        self.status = self.reader.readline().decode().strip()
        self.headers = {}
        while (line := self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.chunked = self.headers.get("transfer-encoding") == "chunked"
        self.complete = False

    def pieces(self) -> Iterator[tuple[bytes, float]]:
        try:
            if self.chunked:
                while size_line := self.reader.readline():
                    size = int(size_line.split(b";")[0], 16)
                    data = self.reader.read(size)
                    if self.reader.read(2) != b"\r\n":
                        return  # cut in the middle of a chunk
                    if size == 0:
                        self.complete = True
                        return
                    yield data, time.time()
            elif "content-length" in self.headers:
                data = self.reader.read(int(self.headers["content-length"]))
                self.complete = len(data) == int(self.headers["content-length"])
                yield data, time.time()
            else:  # HTTP/1.0 style: the body ends when the server closes
                while data := self.reader.read1(65536):
                    yield data, time.time()
                self.complete = True
        except ConnectionError:
            return

    def lines(self) -> Iterator[tuple[str, float]]:
        """Whole lines of the body, each with the time its last byte came."""
        pending = b""
        for data, arrived in self.pieces():
            pending += data
            *done, pending = pending.split(b"\n")
            for line in done:
                yield line.decode(), arrived

    def close(self):
        self.reader.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def get_json(url, timeout=10.0):
    with urlopen(url, timeout=timeout) as response:
        return json.load(response)


# -- the servers ---------------------------------------------------------------


def _gunicorn(worker_class, *args):
    @contextlib.contextmanager
    def launch(*extra):
        with gunicorn(TARGET, worker_class=worker_class, args=(*args, *extra)) as (
            url,
            _proc,
        ):
            yield url

    return launch


def _werkzeug(threaded):
    @contextlib.contextmanager
    def launch(*extra):
        with werkzeug_server(probe_app, threaded=threaded) as url:
            yield url

    return launch


def _waitress(*args):
    @contextlib.contextmanager
    def launch(*extra):
        with waitress(TARGET, args=(*args, *extra)) as url:
            yield url

    return launch


# key: (what the table calls it, how it is started, the timeout option, launcher)
SERVERS = {
    "werkzeug-threaded": (
        "Werkzeug dev server, threaded",
        "flask run",
        (),
        _werkzeug(threaded=True),
    ),
    "werkzeug-single": (
        "Werkzeug dev server, one thread",
        "flask run --without-threads",
        (),
        _werkzeug(threaded=False),
    ),
    "gunicorn-sync": (
        "gunicorn sync",
        "gunicorn -w 1",
        ("--timeout", str(TIMEOUT_S)),
        _gunicorn("sync"),
    ),
    "gunicorn-gthread": (
        "gunicorn gthread",
        f"gunicorn -w 1 -k gthread --threads {THREADS}",
        ("--timeout", str(TIMEOUT_S)),
        _gunicorn("gthread", "--threads", str(THREADS)),
    ),
    "gunicorn-gevent": (
        "gunicorn gevent",
        "gunicorn -w 1 -k gevent",
        ("--timeout", str(TIMEOUT_S)),
        _gunicorn("gevent"),
    ),
    "waitress": (
        "waitress",
        f"waitress-serve --threads={THREADS}",
        (f"--channel-timeout={TIMEOUT_S}",),
        _waitress(f"--threads={THREADS}"),
    ),
}


# -- the measurements ------------------------------------------------------------


def measure_streaming(url):
    """Does the first chunk arrive before the generator makes the last one?

    Each probe line carries the time it was made; the client notes when it
    arrived. Same machine, same clock: no sleeps, no guessing.
    """
    with RawStream(url, "/stream?chunks=3&interval_ms=300&id=streaming") as stream:
        lines = list(stream.lines())
        status, chunked, complete = stream.status, stream.chunked, stream.complete
    first_arrived = lines[0][1]
    last_made = float(lines[-1][0].split()[1])
    return {
        "http": status.split()[0],
        "streams": first_arrived < last_made,
        "chunked": chunked,
        "raw_first_arrived_before_last_made_ms": round(
            (last_made - first_arrived) * 1000
        ),
        "raw_complete": complete,
    }


def measure_disconnect(url):
    """Read one chunk, hang up, and ask the probe when its generator ended."""
    probe = uuid.uuid4().hex  # the in-process probe remembers earlier runs
    path = f"/stream?chunks=100000&interval_ms={HEARTBEAT_MS}&id={probe}"
    with RawStream(url, path) as stream:
        next(stream.lines())
    closed_at = time.time()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):  # 404 until the generator ends
            ending = get_json(f"{url}/ended?id={probe}")
            latency_ms = (ending["at"] - closed_at) * 1000
            return {
                "disconnect_heartbeats": round(latency_ms / HEARTBEAT_MS),
                "disconnect_how": ending["how"],
                "raw_disconnect_ms": round(latency_ms),
            }
        time.sleep(0.05)
    raise AssertionError("the generator never ended after the client left")


def measure_keepalive(url):
    """After a finished stream, does the same connection take a second request?"""
    with RawStream(url, "/stream?chunks=2&interval_ms=0&id=keepalive1") as stream:
        for _ in stream.pieces():
            pass
        if not stream.complete or stream.headers.get("connection") == "close":
            return {"keepalive": False}
        try:
            stream.sock.settimeout(3)
            stream.send("/stream?chunks=1&interval_ms=0&id=keepalive2")
        except OSError:
            return {"keepalive": False}
        return {"keepalive": stream.status.endswith("200 OK")}


def measure_concurrency(url):
    """Open TRIED slow streams at once; count those that get a first byte."""
    streams = []
    selector = selectors.DefaultSelector()
    try:
        parts = urlsplit(url)
        for n in range(TRIED):
            sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
            path = f"/stream?chunks=100000&interval_ms={HEARTBEAT_MS}&id=slow{n}"
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            streams.append(sock)
            selector.register(sock, selectors.EVENT_READ)
        served = set()
        deadline = time.monotonic() + WINDOW_S
        while len(served) < TRIED and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(timeout=left):
                served.add(key.fileobj)
                selector.unregister(key.fileobj)
        return {"concurrent": len(served), "tried": TRIED}
    finally:
        selector.close()
        for sock in streams:
            sock.close()


def measure_long_stream(url):
    """One chunk, 4 s of silence, a last chunk: against a 2 s timeout."""
    path = f"/stream?chunks={LONG_CHUNKS}&interval_ms={LONG_INTERVAL_MS}&id=long"
    started = time.monotonic()
    with RawStream(url, path) as stream:
        lines = list(stream.lines())
        complete = stream.complete and len(lines) == LONG_CHUNKS
    return {
        "long_stream": "complete" if complete else "cut off",
        "raw_long_stream_lines": len(lines),
        "raw_long_stream_s": round(time.monotonic() - started, 1),
    }


def measure(key):
    """Every value for one server: two launches, the second with the timeout."""
    label, command, timeout_args, launch = SERVERS[key]
    result = {"key": key, "server": label, "command": command}
    long_result = {}

    def long_stream():
        with launch(*timeout_args) as url:
            long_result.update(measure_long_stream(url))

    # The long stream runs alongside the other measurements, on its own server.
    thread = threading.Thread(target=long_stream)
    thread.start()
    try:
        with launch() as url:
            result.update(measure_streaming(url))
            result.update(measure_disconnect(url))
            result.update(measure_keepalive(url))
            result.update(measure_concurrency(url))  # last: it leaves a queue
    finally:
        thread.join(timeout=60)
    if not long_result:
        raise AssertionError(f"{key}: the long-stream measurement failed")
    result.update(long_result)
    result["timeout_option"] = " ".join(timeout_args) or "none"
    return result


# -- the table -------------------------------------------------------------------

COLUMNS = [
    "Server",
    "Started as",
    "Streams",
    "Chunked",
    "Client gone noticed",
    f"{LONG_INTERVAL_MS / 1000:g} s silent stream, {TIMEOUT_S} s timeout",
    "Slow streams at once",
    "Keep-alive after a stream",
]


def cells(row):
    """One table row, every cell computed from measured values only."""
    if row["concurrent"] == row["tried"]:
        concurrent = f"all {row['tried']} tried"
    else:
        concurrent = f"{row['concurrent']} of {row['tried']}"
    beats = row["disconnect_heartbeats"]
    if row["timeout_option"] == "none":
        long_stream = f"{row['long_stream']} (no such timeout)"
    else:
        long_stream = f"{row['long_stream']} (``{row['timeout_option']}``)"
    return [
        row["server"],
        f"``{row['command']}``",
        "yes" if row["streams"] else "no: buffered",
        "yes" if row["chunked"] else f"no ({row['http']}, ends at close)",
        f"after {beats} heartbeat{'s' * (beats != 1)} ({beats * HEARTBEAT_MS} ms)",
        long_stream,
        concurrent,
        "yes" if row["keepalive"] else "no",
    ]


def to_csv(rows):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(cells(row))
    return out.getvalue()


def main():
    rows = []
    for key in SERVERS:
        print(f"measuring {key}...", flush=True)
        rows.append(measure(key))
        print(json.dumps(rows[-1]), flush=True)
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "servers.json").write_text(json.dumps(rows, indent=2) + "\n")
    (DATA / "servers.csv").write_text(to_csv(rows))
    print(f"wrote {DATA / 'servers.json'} and {DATA / 'servers.csv'}")


if __name__ == "__main__":
    main()
