"""Measure what each WSGI server does with a streamed response.

``python -m tests.deploy_matrix`` starts every server on 127.0.0.1, measures
it with ``snippets/servers.py`` and writes ``docs/deploy/_data/servers.json``
(every value), ``servers.csv`` (every cell, one row per server) and one
transposed table per family of servers, ``servers-<family>.csv``, which
one two-column table per server, ``server-<key>.csv``, which
deploy/servers shows in tabs (narrow enough for a phone).
``tests/deploy/test_servers_live.py`` measures again and asserts that every
cell still equals the committed file, so the tables cannot drift.

The measurements run in parallel, each on its own server (a server that never
closes an abandoned generator is spoilt for the next measurement).

The same raw HTTP client serves ``tests/deploy/test_proxies_live.py``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import selectors
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

from tests.servers import (
    flask_run,
    gunicorn,
    hypercorn,
    uvicorn,
    uwsgi_http,
    waitress,
)

DATA = Path(__file__).resolve().parent.parent / "docs" / "deploy" / "_data"
MODULE = "snippets.servers"
TARGET = f"{MODULE}:app"

HEARTBEAT_MS = 200  # how often the probe writes while we wait for a disconnect
TIMEOUT_S = 2  # gunicorn --timeout / waitress --channel-timeout for the long stream
LONG_CHUNKS, LONG_INTERVAL_MS = 2, 4000  # 4 s of silence, longer than TIMEOUT_S
TRIED = 12  # slow streams opened at once
THREADS = 4  # --threads for gunicorn gthread and waitress
WINDOW_S = 1.5  # a stream that has sent nothing by then is waiting for a worker
NOTICE_WINDOW_S = 2  # a generator not ended by then was not told the client left
SHORT_CHUNKS = 6  # the finite stream a client leaves: 1.2 s of heartbeats
FAST_LINES = 10_000_000  # the fast stream clients leave: 640 MB, no pauses
FAST_CLIENTS = 3  # fast streams left at once (one alone hides waitress's race)
FAST_WINDOW_S = 3
PARALLEL = 5  # measurements at once; they mostly wait (startups are CPU-bound)
STOP_AFTER_S = 2  # SIGKILL a server still running this long after SIGTERM


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
    # `flask run` in a process of its own, as the page's command runs it. In a
    # thread of this process it shared the interpreter with the other
    # measurements' clients, and both Werkzeug rows once failed the disconnect
    # cell under make test's load (the count was not kept).
    @contextlib.contextmanager
    def launch(*extra):
        args = () if threaded else ("--without-threads",)
        with flask_run(MODULE, *args) as (url, _proc):
            yield url

    return launch


def _waitress(*args):
    @contextlib.contextmanager
    def launch(*extra):
        with waitress(TARGET, args=(*args, *extra)) as url:
            yield url

    return launch


def _uwsgi(listen, *args):
    @contextlib.contextmanager
    def launch(*extra):
        # uWSGI's default: one process, one thread. With --threads 4,
        # --harakiri cut a stream in one run of three here: not measurable.
        argv = (*args, *extra, "--module", TARGET)
        with uwsgi_http(*argv, listen=listen, stop_after=STOP_AFTER_S) as (url, _proc):
            yield url

    return launch


def _uvicorn(attribute):
    @contextlib.contextmanager
    def launch(*extra):
        with uvicorn(f"{MODULE}:{attribute}", *extra, stop_after=STOP_AFTER_S) as (
            url,
            _proc,
        ):
            yield url

    return launch


def _hypercorn():
    @contextlib.contextmanager
    def launch(*extra):
        # --workers 0: one process, which SIGKILL stops with its stuck threads.
        with hypercorn(TARGET, "--workers", "0", *extra, stop_after=STOP_AFTER_S) as (
            url,
            _proc,
        ):
            yield url

    return launch


def server(
    label,
    short,
    family,
    command,
    timeout_args,
    launch,
    cpu_bound_threads=False,
    fast_race=False,
):
    return {
        "label": label,
        "short": short,  # the column heading in its family's table
        "family": family,
        "command": command,
        "timeout_args": timeout_args,
        "launch": launch,
        # asyncio's default executor has min(32, CPUs + 4) threads.
        "cpu_bound_threads": cpu_bound_threads,
        # waitress's I/O thread must win a lock its app thread holds while it
        # writes: whether a fast stream is closed in time is a race.
        "fast_race": fast_race,
    }


UWSGI = f"uwsgi --master --module {TARGET}"
HARAKIRI = ("--harakiri", str(TIMEOUT_S))
SERVERS = {
    "werkzeug-threaded": server(
        "Werkzeug dev server, threaded", "threaded", "werkzeug", "flask run", (),
        _werkzeug(threaded=True),
    ),
    "werkzeug-single": server(
        "Werkzeug dev server, one thread", "one thread", "werkzeug",
        "flask run --without-threads", (), _werkzeug(threaded=False),
    ),
    "gunicorn-sync": server(
        "gunicorn sync", "sync", "gunicorn", "gunicorn -w 1",
        ("--timeout", str(TIMEOUT_S)), _gunicorn("sync"),
    ),
    "gunicorn-gthread": server(
        "gunicorn gthread", "gthread", "gunicorn",
        f"gunicorn -w 1 -k gthread --threads {THREADS}",
        ("--timeout", str(TIMEOUT_S)), _gunicorn("gthread", "--threads", str(THREADS)),
    ),
    "gunicorn-gevent": server(
        "gunicorn gevent", "gevent", "gunicorn", "gunicorn -w 1 -k gevent",
        ("--timeout", str(TIMEOUT_S)), _gunicorn("gevent"),
    ),
    "waitress": server(
        "waitress", "waitress", "waitress", f"waitress-serve --threads={THREADS}",
        (f"--channel-timeout={TIMEOUT_S}",), _waitress(f"--threads={THREADS}"),
        fast_race=True,
    ),
    "uwsgi-http": server(
        "uWSGI --http", "--http", "uwsgi", f"{UWSGI} --http :8000", HARAKIRI,
        _uwsgi("--http"),
    ),
    "uwsgi-http-keepalive": server(
        "uWSGI --http, keep-alive, auto-chunked", "--http, keep-alive", "uwsgi",
        f"{UWSGI} --http :8000 --http-keepalive --http-auto-chunked", HARAKIRI,
        _uwsgi("--http", "--http-keepalive", "--http-auto-chunked"),
    ),
    "uwsgi-http-socket": server(
        "uWSGI --http-socket", "--http-socket", "uwsgi",
        f"{UWSGI} --http-socket :8000", HARAKIRI,
        _uwsgi("--http-socket"),
    ),
    "uvicorn-a2wsgi": server(
        "uvicorn + a2wsgi", "a2wsgi", "asgi", f"uvicorn {MODULE}:a2wsgi_app",
        ("--timeout-keep-alive", str(TIMEOUT_S)), _uvicorn("a2wsgi_app"),
    ),
    "uvicorn-asgiref": server(
        "uvicorn + asgiref WsgiToAsgi", "asgiref", "asgi",
        f"uvicorn {MODULE}:asgiref_app",
        ("--timeout-keep-alive", str(TIMEOUT_S)), _uvicorn("asgiref_app"),
    ),
    "hypercorn": server(
        "hypercorn (WSGI)", "hypercorn", "asgi", f"hypercorn {TARGET}",
        ("--keep-alive", str(TIMEOUT_S)), _hypercorn(), cpu_bound_threads=True,
    ),
}  # fmt: skip

FAMILIES = {
    "werkzeug": "Werkzeug",
    "gunicorn": "gunicorn",
    "waitress": "waitress",
    "uwsgi": "uWSGI",
    "asgi": "uvicorn and hypercorn",
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


def leave_after_one_line(url, path):
    """Start a stream, read one line, hang up; return when we hung up."""
    with RawStream(url, path) as stream:
        next(stream.lines())
    return time.time()


def wait_for_ending(url, probe, window):
    """The probe's record of how the generator ended, or None after window s."""
    deadline = time.monotonic() + window
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):  # 404 until the generator ends
            return get_json(f"{url}/ended?id={probe}", timeout=window)
        time.sleep(0.05)
    return None


def measure_disconnect(url):
    """Read one line of an endless stream, hang up: when did the generator end?"""
    probe = uuid.uuid4().hex  # the in-process probe remembers earlier runs
    path = f"/stream?chunks=100000&interval_ms={HEARTBEAT_MS}&id={probe}"
    closed_at = leave_after_one_line(url, path)
    ending = wait_for_ending(url, probe, NOTICE_WINDOW_S)
    if ending is None:
        return {"disconnect_heartbeats": None, "disconnect_how": None}
    latency_ms = (ending["at"] - closed_at) * 1000
    return {
        "disconnect_heartbeats": round(latency_ms / HEARTBEAT_MS),
        "disconnect_how": ending["how"],
        "raw_disconnect_ms": round(latency_ms),
    }


def measure_closed(url):
    """Leave a 10-line stream after one line: is the generator closed (or does
    it run to its end), and is the response's close() called at all?"""
    probe = uuid.uuid4().hex
    path = f"/stream?chunks={SHORT_CHUNKS}&interval_ms={HEARTBEAT_MS}&id={probe}"
    leave_after_one_line(url, path)
    window = SHORT_CHUNKS * HEARTBEAT_MS / 1000 + NOTICE_WINDOW_S
    ending = wait_for_ending(url, probe, window)
    assert ending is not None, "a finite stream never ended"
    # call_on_close runs just after the generator's finally: give it a moment.
    deadline = time.monotonic() + 0.5
    while not ending["response_closed"] and time.monotonic() < deadline:
        time.sleep(0.05)
        ending = get_json(f"{url}/ended?id={probe}")
    return {
        "closed_how": ending["how"],
        "response_closed": ending["response_closed"],
        "raw_closed_sent": ending["sent"],
    }


def measure_fast(url):
    """FAST_CLIENTS clients, one after the other, start a stream that never
    pauses (like /items.ndjson), read one line and hang up."""
    probes = [uuid.uuid4().hex for _ in range(FAST_CLIENTS)]
    served = 0
    for probe in probes:
        path = f"/fast?lines={FAST_LINES}&id={probe}"
        try:
            with RawStream(url, path, timeout=2) as stream:
                next(stream.lines())
        except OSError:  # a single-threaded server: the next client waits
            break
        served += 1
    # One look after the window, no polling: requests to a quiet server are
    # what wakes waitress's I/O thread, and a busy one would hide the race.
    time.sleep(FAST_WINDOW_S)
    endings = [wait_for_ending(url, probe, 1) for probe in probes[:served]]
    endings = [ending for ending in endings if ending is not None]
    closed = sum(ending["how"] == "GeneratorExit" for ending in endings)
    if len(endings) < FAST_CLIENTS:
        fast = "still running"
    else:
        fast = "closed" if closed == FAST_CLIENTS else "ran to its end"
    return {
        "fast": fast,
        "raw_fast_served": served,
        "raw_fast_closed": closed,
        "raw_fast_ended": len(endings),
        "raw_fast_sent": [ending["sent"] for ending in endings],
    }


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
        framing_says_complete = stream.complete
    return {
        "long_stream": "complete" if complete else "cut off",
        # A cut-off body whose framing still looks whole: the client cannot tell.
        "long_stream_looks_complete": framing_says_complete,
        "raw_long_stream_lines": len(lines),
        "raw_long_stream_s": round(time.monotonic() - started, 1),
    }


def _basic(url):
    result = measure_streaming(url)
    result.update(measure_keepalive(url))
    result.update(measure_closed(url))
    result.update(measure_concurrency(url))  # last: it leaves a queue
    return result


def _long_then_disconnect(url):
    result = measure_long_stream(url)
    # gunicorn sync and uWSGI killed their worker: wait for the new one.
    get_json(f"{url}/stats", timeout=30)
    result.update(measure_disconnect(url))  # last: a bridge never ends it
    return result


# Each part on a server of its own, started with the timeout option for
# "long". Fast streams last: on the bridges they keep a core busy after the
# client left.
PARTS = {
    "long": _long_then_disconnect,
    "basic": _basic,
    "fast": measure_fast,
}


def measure_part(key, part):
    """One part of one server's row, on a server of its own."""
    entry = SERVERS[key]
    extra = entry["timeout_args"] if part == "long" else ()
    try:
        with entry["launch"](*extra) as url:
            # The port opens before the app is ready (gunicorn's and uWSGI's
            # workers boot after it): one request that may wait for them.
            get_json(f"{url}/stats", timeout=30)
            return PARTS[part](url)
    except Exception as exc:
        raise AssertionError(f"{key}, {part}: {exc!r}") from exc


def measure_all(keys=None, parallel=PARALLEL):
    """Every value for every server (or those in keys), measured in parallel."""
    keys = list(keys or SERVERS)
    jobs = [(key, part) for part in PARTS for key in keys]
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {job: pool.submit(measure_part, *job) for job in jobs}
    rows = []
    for key in keys:
        entry = SERVERS[key]
        row = {
            "key": key,
            "server": entry["label"],
            "family": entry["family"],
            "command": entry["command"],
        }
        for part in PARTS:
            row.update(futures[key, part].result())  # re-raises a failed one
        row["timeout_option"] = " ".join(entry["timeout_args"]) or "none"
        row["cpus"] = os.cpu_count()
        row["fast_race"] = entry["fast_race"]
        rows.append(row)
    return rows


# -- the tables ------------------------------------------------------------------

QUESTIONS = [
    "Streams",
    "Chunked",
    "Client gone noticed",
    "Generator closed after the client left",
    "Fast stream, client gone",
    f"{LONG_INTERVAL_MS / 1000:g} s silent stream, {TIMEOUT_S} s timeout",
    "Slow streams at once",
    "Keep-alive after a stream",
]
COLUMNS = ["Server", "Started as", *QUESTIONS]


def cells(row):
    """One row's answers, every one computed from measured values only."""
    if row["concurrent"] == row["tried"]:
        concurrent = f"all {row['tried']} tried"
    else:
        concurrent = f"{row['concurrent']} of {row['tried']}"
    beats = row["disconnect_heartbeats"]
    if beats is None:
        noticed = f"never (not in {NOTICE_WINDOW_S} s)"
    else:
        noticed = f"after {beats * HEARTBEAT_MS} ms"
    if row["closed_how"] == "GeneratorExit":
        closed = "yes"
    elif row["response_closed"]:
        closed = "no: it runs to its end"
    else:
        closed = "no: it runs to its end, and close() is never called"
    fast = {
        "closed": "closed",
        "ran to its end": f"ran to its end ({FAST_LINES:,} lines)",
        "still running": f"still running after {FAST_WINDOW_S} s",
    }[row["fast"]]
    if row["fast_race"]:
        fast = "a race: closed, or still running"
    if row["long_stream"] == "complete":
        long_stream = "complete"
    elif row["long_stream_looks_complete"]:
        long_stream = "cut off, and the body looks complete"
    else:
        long_stream = "cut off (the client can tell)"
    return [
        "yes" if row["streams"] else "no: buffered",
        "yes" if row["chunked"] else "no: ends at close",
        noticed,
        closed,
        fast,
        long_stream,
        concurrent,
        "yes" if row["keepalive"] else "no",
    ]


def to_csv(rows):
    """Every cell, one row per server (the committed record)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row["server"], f"``{row['command']}``", *cells(row)])
    return out.getvalue()


def family_csv(rows, family):
    """One family's servers as columns, the questions as rows: narrow tables."""
    rows = [row for row in rows if row["family"] == family]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["", *(SERVERS[row["key"]]["short"] for row in rows)])
    answers = [cells(row) for row in rows]
    for n, question in enumerate(QUESTIONS):
        writer.writerow([question, *(a[n] for a in answers)])
    return out.getvalue()


def server_csv(row):
    """One server's answers, two columns: narrow enough for a phone."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["", "measured"])
    writer.writerows(zip(QUESTIONS, cells(row), strict=True))
    return out.getvalue()


def write(rows):
    DATA.mkdir(parents=True, exist_ok=True)
    for row in rows:
        (DATA / f"server-{row['key']}.csv").write_text(server_csv(row))
    (DATA / "servers.json").write_text(json.dumps(rows, indent=2) + "\n")
    (DATA / "servers.csv").write_text(to_csv(rows))
    for family in FAMILIES:
        (DATA / f"servers-{family}.csv").write_text(family_csv(rows, family))


def main(argv=None):
    """``--render``: rewrite the tables from the committed JSON, no measuring."""
    if "--render" in (argv or sys.argv[1:]):
        write(json.loads((DATA / "servers.json").read_text()))
        return
    started = time.monotonic()
    rows = measure_all()
    for row in rows:
        print(json.dumps(row), flush=True)
    write(rows)
    print(f"measured in {time.monotonic() - started:.0f} s; wrote {DATA}/servers*")


if __name__ == "__main__":
    main()
