"""Measurements over real sockets on 127.0.0.1: gunicorn, Werkzeug, nginx."""

import contextlib
import os
import resource
import selectors
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.client import BUFFER_SIZE, fetch
from snippets.csv_export import csv_chunks, fetch_rows
from tests.servers import free_port, gunicorn, nginx, process_server

TARGET = "bench.apps:app"
GTHREAD_THREADS = 4  # for the CSV and file measurements


@contextlib.contextmanager
def gthread(*args, threads=GTHREAD_THREADS):
    with gunicorn(
        TARGET, worker_class="gthread", args=("--threads", str(threads), *args)
    ) as (url, proc):
        yield url, proc


@contextlib.contextmanager
def werkzeug_process():
    """``flask run`` in its own process: the threaded dev server, HTTP/1.1."""
    port = free_port()
    argv = [
        sys.executable, "-m", "flask", "--app", "bench.apps", "run",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    with process_server(argv, port) as proc:
        yield f"http://127.0.0.1:{port}", proc


def timed(url, repeats, buffer):
    fetch(url, buffer)  # warm-up: imports, page cache, first-request set-up
    return [fetch(url, buffer) for _ in range(repeats)]


# --- time to first byte ----------------------------------------------------


def ttfb(sizes, repeats):
    """First body byte and whole body, streamed and built first, by row count."""
    buffer = bytearray(BUFFER_SIZE)
    points = []
    with gthread() as (url, _proc):
        for rows in sizes:
            for variant, path in (("streamed", "batched.csv"), ("built", "built.csv")):
                runs = timed(f"{url}/{path}?rows={rows}", repeats, buffer)
                points.append(
                    {
                        "variant": variant,
                        "rows": rows,
                        "body_bytes": runs[0].body_bytes,
                        "ttfb": statistics.median(r.ttfb for r in runs),
                        "total": statistics.median(r.total for r in runs),
                        "ttfb_runs": [r.ttfb for r in runs],
                    }
                )
    return {
        "server": f"gunicorn gthread, 1 worker, {GTHREAD_THREADS} threads",
        "repeats": repeats,
        "points": points,
    }


# --- throughput ------------------------------------------------------------


def in_memory(rows, repeats, chunks):
    """The limit: the same CSV generated and encoded, with no HTTP at all."""
    runs = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for chunk in chunks(fetch_rows(rows)):
            chunk.encode()
        runs.append(time.perf_counter() - start)
    return runs[1:]


def throughput(rows, repeats):
    from bench.apps import csv_lines

    buffer = bytearray(BUFFER_SIZE)
    results = []

    def record(server, variant, seconds):
        results.append(
            {
                "server": server,
                "variant": variant,
                "rows": rows,
                "seconds_best": min(seconds),
                "seconds_median": statistics.median(seconds),
                "rows_per_second": rows / statistics.median(seconds),
                "runs": seconds,
            }
        )

    record("none (in memory)", "batched", in_memory(rows, repeats, csv_chunks))
    record("none (in memory)", "unbatched", in_memory(rows, repeats, csv_lines))
    servers = (
        ("gunicorn gthread", gthread),
        ("Werkzeug (flask run)", werkzeug_process),
    )
    for name, launcher in servers:
        with launcher() as (url, _proc):
            urls = {
                variant: f"{url}/{variant}.csv?rows={rows}"
                for variant in ("batched", "unbatched")
            }
            runs = {variant: [] for variant in urls}
            for target in urls.values():
                fetch(target, buffer)  # warm-up, as timed() does
            # Alternating, so a burst of load on the machine slows both
            # variants, not all the runs of one (all of one, then all of the
            # other, let a loaded run of make test see them tie once).
            for _ in range(repeats):
                for variant, target in urls.items():
                    runs[variant].append(fetch(target, buffer).total)
            for variant, seconds in runs.items():
                record(name, variant, seconds)
    return {"rows": rows, "repeats": repeats, "results": results}


# --- files -----------------------------------------------------------------


def make_file(path, size):
    """Random bytes: nothing along the way can compress or skip them."""
    block = 1024 * 1024
    with open(path, "wb") as file:
        for _ in range(size // block):
            file.write(os.urandom(block))


def files(size, repeats):
    """The same file three ways, read by the same client."""
    buffer = bytearray(BUFFER_SIZE)
    results = []

    def record(server, how, runs):
        assert all(r.body_bytes >= size for r in runs), "short read"
        seconds = statistics.median(r.total for r in runs)
        results.append(
            {
                "server": server,
                "how": how,
                "seconds_best": min(r.total for r in runs),
                "seconds_median": seconds,
                "mib_per_second": size / 2**20 / seconds,
                "runs": [r.total for r in runs],
            }
        )

    with tempfile.TemporaryDirectory(prefix="bench-files-") as tmp:
        os.chmod(tmp, 0o755)  # nginx started as root serves as "nobody"
        path = Path(tmp) / "big.bin"
        make_file(path, size)
        os.chmod(path, 0o644)
        env = ("--env", f"BENCH_FILE={path}")
        with gthread(*env) as (url, _proc):
            record(
                "gunicorn gthread",
                "send_file (sendfile)",
                timed(f"{url}/file", repeats, buffer),
            )
            record(
                "gunicorn gthread",
                "generator, 8 KiB chunks",
                timed(f"{url}/file-chunks", repeats, buffer),
            )
        block = f"sendfile on; tcp_nopush on; location / {{ root {tmp}; }}"
        with nginx(block) as url:
            record(
                "nginx",
                "static file (sendfile on)",
                timed(f"{url}/big.bin", repeats, buffer),
            )
    return {"bytes": size, "repeats": repeats, "results": results}


# --- concurrency -----------------------------------------------------------


def raise_fd_limit(needed):
    """Raise RLIMIT_NOFILE for this process and the servers it starts (they
    inherit it). As root the hard limit can be raised too; otherwise the soft
    limit stops at the hard one. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(needed, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def worker_rss(proc):
    """RSS of gunicorn's one worker (the master's child)."""
    (worker,) = psutil.Process(proc.pid).children()
    return worker.memory_info().rss


def hold_streams(url, count, interval, min_beats=2, batch=500):
    """Open ``count`` SSE streams at once; return how many get heartbeats.

    A stream is held when it received at least ``min_beats`` heartbeats after
    every stream was open and had answered (or none had answered for a
    while), so all of them were open at the same time.
    """
    host, port = url.removeprefix("http://").split(":")
    request = f"GET /sse HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    selector = selectors.DefaultSelector()
    streams, failed = {}, 0

    def read_for(seconds, until=None, stall=None):
        """Read every ready stream for ``seconds``, or until ``until()``, or
        until no new stream has answered for ``stall`` seconds."""
        deadline = time.monotonic() + seconds
        answered, progress = sum(s["bytes"] > 0 for s in streams.values()), None
        last = time.monotonic()
        while time.monotonic() < deadline and not (until and until()):
            for key, _ in selector.select(timeout=0.1):
                state = streams[key.fileobj]
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                if not state["bytes"]:
                    answered += 1
                state["bytes"] += len(data)
                text = state["tail"] + data
                state["beats"] += text.count(b": heartbeat")
                state["tail"] = text[-16:].replace(b": heartbeat", b"")
            if progress != answered:
                progress, last = answered, time.monotonic()
            elif stall and time.monotonic() - last > stall:
                return

    def answered():
        return all(s["bytes"] for s in streams.values())

    for opened in range(count):
        if opened and not opened % batch:
            # Let the worker accept what is waiting before opening more: a
            # full listen backlog drops connections that then retry slowly.
            read_for(120, until=answered, stall=max(5.0, 3 * interval))
        sock = socket.socket()
        sock.settimeout(10)
        try:
            sock.connect((host, int(port)))
            sock.sendall(request)
        except OSError:
            failed += 1
            sock.close()
            continue
        sock.setblocking(False)
        streams[sock] = {"tail": b"", "beats": 0, "bytes": 0}
        selector.register(sock, selectors.EVENT_READ)
    # On a busy machine the worker may still be accepting when the last
    # connect returns: wait until every stream has answered, or none has for
    # a while (a gthread worker never answers the ones beyond its threads).
    read_for(120, until=answered, stall=max(5.0, 3 * interval))
    all_open = time.monotonic()
    for state in streams.values():
        state["beats"] = 0
    read_for(interval * (min_beats + 2))
    return streams, selector, failed, all_open


def concurrency(gevent_streams, gthread_threads, interval):
    """Idle SSE streams with heartbeats held at once, and memory per stream."""
    # Each side of a stream holds one descriptor: this process and the worker
    # (which inherits the limit) each need one per stream, plus some slack.
    requested = gevent_streams
    fd_limit = raise_fd_limit(gevent_streams + 1000)
    gevent_streams = min(gevent_streams, fd_limit - 200)
    env = ("--env", f"BENCH_SSE_INTERVAL={interval}", "--timeout", "120")
    configs = (
        (
            f"gunicorn gevent, 1 worker, --worker-connections {2 * gevent_streams}",
            "gevent",
            ("--worker-connections", str(2 * gevent_streams), "--backlog", "4096"),
            gevent_streams,
        ),
        (
            f"gunicorn gthread, 1 worker, --threads {gthread_threads}",
            "gthread",
            ("--threads", str(gthread_threads)),
            gthread_threads + gthread_threads // 2,
        ),
    )
    results = []
    buffer = bytearray(BUFFER_SIZE)
    for label, worker_class, args, opened in configs:
        with gunicorn(TARGET, worker_class=worker_class, args=(*env, *args)) as (
            url,
            proc,
        ):
            fetch(f"{url}/batched.csv?rows=10", buffer)  # warm-up
            idle = worker_rss(proc)
            (worker,) = psutil.Process(proc.pid).children()
            cpu = worker.cpu_times(), time.process_time(), time.monotonic()
            streams, selector, failed, _ = hold_streams(url, opened, interval)
            loaded = worker_rss(proc)
            worker_cpu = sum(worker.cpu_times()[:2]) - sum(cpu[0][:2])
            client_cpu = time.process_time() - cpu[1]
            wall = time.monotonic() - cpu[2]
            held = sum(state["beats"] >= 2 for state in streams.values())
            silent = sum(state["bytes"] == 0 for state in streams.values())
            for sock in streams:
                sock.close()
            selector.close()
        results.append(
            {
                "server": label,
                "worker_class": worker_class,
                "opened": opened,
                "connect_failed": failed,
                "held": held,
                "silent": silent,  # not a single byte received, not even headers
                "heartbeat_interval": interval,
                "fd_limit": fd_limit,
                # CPU seconds each side used while opening and holding them,
                # against the wall time: near 1.0 means that side was busy
                "worker_cpu_share": worker_cpu / wall,
                "client_cpu_share": client_cpu / wall,
                "worker_rss_idle": idle,
                "worker_rss_loaded": loaded,
                "rss_per_stream": loaded / held if held else None,
                "added_rss_per_stream": (loaded - idle) / held if held else None,
            }
        )
    return {"gevent_streams_requested": requested, "results": results}
