"""What gunicorn (sync, gthread, gevent) and waitress do to an open stream
on SIGTERM, SIGHUP and SIGQUIT, with and without snippets/restarts.py's
shutdown hook; and what an idle subscriber (snippets/broadcast.py) does to
shutdown time.

Every cell is measured in parallel (one server each), so the module takes
about the longest cell: ``--timeout``. ``python -m tests.deploy.test_restarts_live``
writes docs/deploy/_data/restarts.csv; the tests measure again and compare.
"""

from __future__ import annotations

import csv
import io
import re
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.servers import free_port, open_request, process_server, read_log

# The whole matrix is measured once, in the first test that asks for it:
# about the slowest cell (~10 s) on a quiet machine, minutes on a loaded one.
pytestmark = [pytest.mark.live, pytest.mark.timeout(600)]

DATA = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "_data"
CSV = DATA / "restarts.csv"  # the streams with events
IDLE_CSV = DATA / "restarts_idle.csv"  # the idle streams
GRACEFUL = 3  # --graceful-timeout, seconds
TIMEOUT = 6  # --timeout (gunicorn's worker timeout), seconds
HOOK = ("-c", "python:snippets.restarts")
SIGNALS = {
    "SIGTERM": signal.SIGTERM,
    "SIGHUP": signal.SIGHUP,
    "SIGQUIT": signal.SIGQUIT,
}
HEADER = ["server", "signal", "body ends", "client sees", "finally"]
IDLE_HEADER = ["server", "stream", "body ends", "client sees", "finally"]


def start(server, target, env):
    """Run ``server`` ("gthread + hook", "waitress", ...) on a free port;
    yields (base URL, main process)."""
    port = free_port()
    if server == "waitress":
        argv = [
            sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}",
            "--threads", "4", target,
        ]  # fmt: skip
    else:
        worker, _, hook = server.partition(" + ")
        argv = [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--worker-class", worker, "--workers", "1",
            "--graceful-timeout", str(GRACEFUL), "--timeout", str(TIMEOUT),
            *(("--threads", "4") if worker == "gthread" else ()),
            *(HOOK if hook else ()), target,
        ]  # fmt: skip
    return f"http://127.0.0.1:{port}", process_server(argv, port, env=env)


def when(seconds):
    """When the body ended, against graceful_timeout."""
    if seconds < GRACEFUL:
        return "before"
    if seconds < GRACEFUL + 1:
        return "at"
    return "later"


def measure(server, stream, sig):
    """Open a stream, wait for its first events, signal the server's main
    process, and note when and how the body ends and what the generator's
    finally block logged."""
    target, path, ready, tick_ms = {
        "ticks": ("snippets.restarts:app", "/events", b"event: tick", "200"),
        "idle": ("snippets.restarts:app", "/events", b"retry:", "60000"),
        "idle, broadcast": ("snippets.broadcast:app", "/stream", b"subscribed", ""),
    }[stream]
    url, server_process = start(server, target, {"GRACEFUL_TICK_MS": tick_ms})
    with server_process as proc:
        sock = open_request(url, path, timeout=60)  # boot under load
        buffer = b""
        while buffer.count(ready) < (2 if stream == "ticks" else 1):
            data = sock.recv(65536)
            assert data, (server, stream, buffer, read_log(proc)[-3000:])
            buffer += data
        signalled = time.monotonic()
        proc.send_signal(SIGNALS[sig])
        try:
            # A chunked body ends with "0\r\n\r\n"; then a browser closes.
            while not buffer.endswith(b"0\r\n\r\n"):
                data = sock.recv(65536)
                if not data:
                    break
                buffer += data
            sees = "clean end" if buffer.endswith(b"0\r\n\r\n") else "cut off"
        except ConnectionResetError:
            sees = "reset"
        ended = time.monotonic() - signalled
        sock.close()
        if b"event: bye" in buffer:
            sees = "bye, " + sees
        if sig != "SIGHUP":
            proc.wait(60)
        exited = time.monotonic() - signalled if sig != "SIGHUP" else None
        # Let the new worker of a reload boot before the launcher stops it.
        logged = re.findall(r"stream (\w+) after event", read_log(proc))
    finally_runs = "yes" if logged else "no"
    return {
        "server": server,
        "stream": stream,
        "signal": sig,
        "body ends": when(ended),
        "client sees": sees,
        "finally": finally_runs,
        "seconds": round(ended, 2),
        "finally how": logged[0] if logged else None,
        "exit seconds": None if exited is None else round(exited, 2),
    }


GUNICORN = ["sync", "gthread", "gevent"]
# The slowest cells first, so the pool's total is about the slowest one.
CELLS = [
    *((w, "ticks", "SIGHUP") for w in GUNICORN),
    *((w, "ticks", "SIGTERM") for w in GUNICORN),
    # Not gevent + SIGQUIT: its body ended anywhere from 0.6 s to
    # graceful_timeout in different runs here.
    *((w, "ticks", "SIGQUIT") for w in ("sync", "gthread")),
    *((w, "idle, broadcast", "SIGTERM") for w in GUNICORN),
    # Not SIGQUIT: its 0.1 s before sys.exit() races the hook's 0.1 s poll.
    *((f"{w} + hook", "ticks", s) for w in GUNICORN for s in ("SIGTERM", "SIGHUP")),
    *((f"{w} + hook", "idle", "SIGTERM") for w in GUNICORN),
    *(("waitress", "ticks", s) for s in SIGNALS),
]


def measure_all():
    # A child inherits an ignored signal: nohup ignores SIGHUP, a shell's
    # background job SIGQUIT, and waitress would ignore them too. Measure
    # servers started with the default disposition.
    previous = {sig: signal.signal(sig, signal.SIG_DFL) for sig in SIGNALS.values()}
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda cell: measure(*cell), CELLS))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def render(rows, header):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row[key] for key in header])
    return out.getvalue()


WORKERS = ["sync", "gthread", "gevent", "waitress"]


def by_worker(rows, header):
    """One narrow table per worker class (the page's tabs): the hook moves
    from the server column to the next one."""
    tables = {}
    for worker in WORKERS:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header[1:])
        for row in rows:
            server, _, hook = row["server"].partition(" + ")
            if server == worker:
                first = row[header[1]] + (" + hook" if hook else "")
                writer.writerow([first, *(row[key] for key in header[2:])])
        if out.getvalue().count("\n") > 1:
            tables[worker] = out.getvalue()
    return tables


def write_worker_tables():
    """Render the per-worker tables from the committed ones."""
    for path, header in ((CSV, HEADER), (IDLE_CSV, IDLE_HEADER)):
        for worker, text in by_worker(committed(path), header).items():
            path.with_name(f"{path.stem}-{worker}.csv").write_text(text)


def split(rows):
    """(streams with events, idle streams)."""
    return (
        [r for r in rows if r["stream"] == "ticks"],
        [r for r in rows if r["stream"] != "ticks"],
    )


@pytest.fixture(scope="module")
def measured():
    return measure_all()


def committed(path):
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def test_every_cell_matches_the_committed_tables(measured):
    """Each cell is measured again; the tables on deploy/restarts must say
    what happened."""
    ticks, idle = split(measured)
    assert [{k: r[k] for k in HEADER} for r in ticks] == committed(CSV)
    assert [{k: r[k] for k in IDLE_HEADER} for r in idle] == committed(IDLE_CSV)
    print(*(f"{r['server']:15} {r['stream']:16} {r['signal']:7} "
            f"body ends {r['seconds']:5} s, exit {r['exit seconds']} s"
            for r in measured), sep="\n")  # fmt: skip


def test_the_per_worker_tables_are_the_committed_tables_split():
    """The page shows the two tables split by worker class, in tabs."""
    for path, header in ((CSV, HEADER), (IDLE_CSV, IDLE_HEADER)):
        tables = by_worker(committed(path), header)
        for worker, text in tables.items():
            assert path.with_name(f"{path.stem}-{worker}.csv").read_text() == text
        rows = sum(text.count("\n") - 1 for text in tables.values())
        assert rows == len(committed(path))


def row(measured, server, stream, sig):
    return next(
        r
        for r in measured
        if (r["server"], r["stream"], r["signal"]) == (server, stream, sig)
    )


@pytest.mark.parametrize("worker", GUNICORN)
def test_sigterm_without_hook_cuts_the_stream_at_graceful_timeout(measured, worker):
    """Without the hook gunicorn waits graceful_timeout, then SIGKILLs the
    worker: the body is cut without its last chunk, and finally never runs."""
    cell = row(measured, worker, "ticks", "SIGTERM")
    assert GRACEFUL <= cell["seconds"] < TIMEOUT - 1
    assert cell["client sees"] == "cut off"
    assert cell["finally"] == "no"


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("worker", GUNICORN)
def test_hook_ends_the_stream_at_once_with_a_bye(measured, worker, sig):
    cell = row(measured, f"{worker} + hook", "ticks", sig)
    assert cell["seconds"] < GRACEFUL
    assert cell["client sees"] == "bye, clean end"
    assert cell["finally how"] == "shutdown"


@pytest.mark.parametrize("worker", GUNICORN)
def test_sighup_leaves_the_old_worker_streaming_past_graceful_timeout(measured, worker):
    """A reload waits graceful_timeout for the old worker, but does not kill
    it: sync and gthread streams go on until --timeout ends the worker
    (gthread: counted from when its loop stopped), gevent's own loop kills
    its greenlets a little after graceful_timeout."""
    cell = row(measured, worker, "ticks", "SIGHUP")
    assert cell["seconds"] >= GRACEFUL + 1
    if worker != "gevent":
        assert cell["seconds"] >= TIMEOUT - 1
    assert cell["client sees"] == "cut off"
    # sync: SystemExit, or GeneratorExit (seen once under a loaded make test).
    assert (
        cell["finally how"]
        in {
            "sync": {"SystemExit", "GeneratorExit"},
            "gthread": {None},
            "gevent": {"GreenletExit"},
        }[worker]
    )


def test_sigquit_cuts_sync_at_once_and_gthread_at_graceful_timeout(measured):
    """SIGQUIT is gunicorn's quick shutdown: the sync worker exits before
    graceful_timeout (its generator sees SystemExit or GeneratorExit); a
    gthread worker's sys.exit() waits for its stream threads, so the master
    SIGKILLs it at graceful_timeout."""
    sync = row(measured, "sync", "ticks", "SIGQUIT")
    gthread = row(measured, "gthread", "ticks", "SIGQUIT")
    assert sync["seconds"] < GRACEFUL
    assert sync["finally"] == "yes"
    assert GRACEFUL <= gthread["seconds"] < GRACEFUL + 1
    assert gthread["finally"] == "no"
    assert sync["client sees"] == gthread["client sees"] == "cut off"


@pytest.mark.parametrize("sig", list(SIGNALS))
def test_waitress_dies_at_once_on_every_signal(measured, sig):
    cell = row(measured, "waitress", "ticks", sig)
    assert cell["seconds"] < 1
    assert cell["client sees"] == "cut off"
    assert cell["finally"] == "no"


@pytest.mark.parametrize("worker", GUNICORN)
def test_idle_broadcast_subscriber_holds_shutdown_for_graceful_timeout(
    measured, worker
):
    """snippets/broadcast.py waits up to 15 s on its queue and never looks at
    shutdown: the stopping worker waits the whole graceful_timeout. The same
    idle wait on graceful_stream's shutdown event ends at once."""
    idle = row(measured, worker, "idle, broadcast", "SIGTERM")
    assert idle["seconds"] >= GRACEFUL
    assert idle["exit seconds"] >= GRACEFUL
    fixed = row(measured, f"{worker} + hook", "idle", "SIGTERM")
    assert fixed["seconds"] < GRACEFUL
    assert fixed["client sees"] == "bye, clean end"


if __name__ == "__main__":
    rows = measure_all()
    ticks, idle = split(rows)
    CSV.write_text(render(ticks, HEADER))
    IDLE_CSV.write_text(render(idle, IDLE_HEADER))
    write_worker_tables()
    for r in rows:
        print(r)
