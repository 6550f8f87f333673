"""async/views over a socket, on every server: what an async generator
becomes, and whether each idiom's async source stops when the client leaves.

Each server serves snippets/views.py once per module; every row must
equal the committed docs/async/_data/async_generators.csv and disconnect.csv,
which the page shows (regenerate them with
``python -m tests.async.test_views_live`` when a server really changed).
"""

import csv
import io
import re
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from tests.servers import (
    ROOT,
    dechunk,
    flask_run,
    gunicorn,
    hypercorn_app,
    open_request,
    read_log,
    read_to_close,
    uvicorn_app,
    uwsgi_router,
    wait_until,
    waitress_app,
)

pytestmark = pytest.mark.live

TARGET = "snippets.views:app"
DATA = ROOT / "docs" / "async" / "_data"
TABLES = {  # file: its columns (two narrow tables read on a phone)
    "async_generators.csv": ["server", "returned as it is", "in a Response"],
    "disconnect.csv": ["server", "idiom 1: client gone", "idiom 2: client gone"],
}
COUNT = 50  # ticks a stream would send (10 ms each) if nobody stopped it
# A stream that stops has made at most 10 ticks on a quiet machine; with
# make test's load, once 13 (the shared loop under gunicorn sync). Half the
# stream is the margin.
STOPS_BY = COUNT // 2
STOPPED = re.compile(r"ticks stopped after (\d+)")
LOOP_CLASH = "Cannot run the event loop while another loop is running"

SERVERS = {
    "flask run": lambda: flask_run("snippets.views"),
    "gunicorn sync": lambda: gunicorn(TARGET),
    "gunicorn gthread": lambda: gunicorn(
        TARGET, worker_class="gthread", args=("--threads", "4")
    ),
    "gunicorn gevent": lambda: gunicorn(TARGET, worker_class="gevent"),
    "waitress": lambda: waitress_app(TARGET),
    "uvicorn + a2wsgi": lambda: uvicorn_app(TARGET, bridge="a2wsgi"),
    "uvicorn + WsgiToAsgi": lambda: uvicorn_app(TARGET, bridge="asgiref"),
    "hypercorn": lambda: hypercorn_app(TARGET),
    "uWSGI --http": lambda: uwsgi_router(TARGET),
}


def fetch(url, path):
    """Status, body size and framing of one response, read to the close."""
    # 30 s: a loaded machine can take seconds over an async view's first call.
    with open_request(url, path, headers=["Connection: close"], timeout=30) as sock:
        raw = read_to_close(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split()[1].decode()
    head = head.lower()
    if b"transfer-encoding: chunked" in head:
        body, complete = dechunk(body)
        return f"{status}, {len(body)} bytes" + ("" if complete else ", cut off")
    if b"content-length:" in head:
        return f"{status}, {len(body)} bytes"
    return f"{status}, {len(body)} bytes, no framing"


def stopped_counts(proc):
    return [int(n) for n in STOPPED.findall(read_log(proc))]


def hang_up_after_three(url, proc, path):
    """Read three ticks, hang up, and report what the async source did:
    'stops' (its finally ran before it made them all), 'runs to the end', or
    'hangs' (nothing ever arrives: the event loop clash in the log)."""
    before = len(stopped_counts(proc))
    sock = open_request(url, f"{path}?count={COUNT}", timeout=0.2)
    received = b""
    with sock:
        for _ in range(150):  # 30 s at 0.2 s per attempt
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if not received and LOOP_CLASH in read_log(proc):
                    return "hangs", None
                continue
            assert data, f"closed early: {received!r}"
            received += data
            if b"tick 2\n" in received:
                break
        else:
            pytest.fail(f"no third tick from {path}: {received!r}")
    assert wait_until(lambda: len(stopped_counts(proc)) > before, timeout=30), (
        f"the async source never stopped: {read_log(proc)[-2000:]}"
    )
    sent = stopped_counts(proc)[-1]
    return ("stops" if sent < COUNT else "runs to the end"), sent


def measure(name):
    with SERVERS[name]() as (url, proc):
        row = {"server": name}
        row["returned as it is"] = fetch(url, "/async-generator")
        row["in a Response"] = fetch(url, "/async-generator-response")
        own, own_sent = hang_up_after_three(url, proc, "/ticks")
        shared, shared_sent = hang_up_after_three(url, proc, "/ticks-shared-loop")
        row["idiom 1: client gone"] = own
        row["idiom 2: client gone"] = shared
        row["_sent"] = (own_sent, shared_sent)
        return row


def committed():
    rows = {}
    for name in TABLES:
        with (DATA / name).open(newline="") as file:
            for row in csv.DictReader(file):
                rows.setdefault(row["server"], {}).update(row)
    return rows


def measure_or_error(name):
    try:
        return measure(name)
    except Exception as exc:  # re-raised by that server's tests only
        return exc


@pytest.fixture(scope="module")
def rows():
    """Two servers at a time: they mostly wait, but nine starting at once
    on two cores can miss the start timeout."""
    with ThreadPoolExecutor(2) as pool:
        return dict(zip(SERVERS, pool.map(measure_or_error, SERVERS), strict=True))


@pytest.fixture(params=list(SERVERS))
def row(request, rows):
    measured = rows[request.param]
    if isinstance(measured, Exception):
        raise measured
    return measured, committed()[request.param]


def test_every_server_is_in_the_committed_table():
    assert list(committed()) == list(SERVERS)


def test_returning_an_async_generator_is_a_500_from_flask(row):
    """Flask refuses it before the server sees a body: the same 265-byte
    error page on every server."""
    measured, expected = row
    assert measured["returned as it is"] == expected["returned as it is"]
    assert measured["returned as it is"] == "500, 265 bytes"


def test_an_async_generator_in_a_response(row):
    """The server finds out when it iterates the body: each says so its own
    way, and two send a 200 with no body."""
    measured, expected = row
    column = "in a Response"
    assert measured[column] == expected[column]


def test_an_async_generator_in_a_response_is_a_protocol_error_behind_a2wsgi():
    """uvicorn + a2wsgi sends 200 and a chunked body without its last chunk:
    an HTTP client (httpx) raises RemoteProtocolError, not an empty 200."""
    with (
        uvicorn_app("snippets.views:app", bridge="a2wsgi") as (url, _proc),
        pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked"),
    ):
        httpx.get(f"{url}/async-generator-response?count=3", timeout=10)


def test_own_loop_idiom_stops_the_source_when_the_client_leaves(row):
    measured, expected = row
    column = "idiom 1: client gone"
    assert measured[column] == expected[column]
    sent = measured["_sent"][0]
    assert sent == COUNT if expected[column] == "runs to the end" else sent <= STOPS_BY


def test_shared_loop_idiom_stops_the_source_when_the_client_leaves(row):
    measured, expected = row
    column = "idiom 2: client gone"
    assert measured[column] == expected[column]
    sent = measured["_sent"][1]
    if expected[column] == "stops":
        assert sent <= STOPS_BY
    elif expected[column] == "runs to the end":
        assert sent == COUNT


def main():
    """Measure every server and rewrite the committed tables."""
    rows = [measure(name) for name in SERVERS]
    for name, columns in TABLES.items():
        out = io.StringIO()
        writer = csv.DictWriter(
            out, columns, extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
        (DATA / name).write_text(out.getvalue())
        print(out.getvalue(), file=sys.stderr)


if __name__ == "__main__":
    main()


ASYNCIO_RUN_APP = """
import asyncio


def application(environ, start_response):
    if environ["PATH_INFO"] == "/asyncio-run":
        asyncio.run(asyncio.sleep(0))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def idle_in_epoll(proc):
    """Every process under the uWSGI master waits in epoll_wait."""
    children = psutil.Process(proc.pid).children()
    return bool(children) and all(
        Path(f"/proc/{child.pid}/wchan").read_text() == "do_epoll_wait"
        for child in children
    )


@pytest.mark.parametrize("path", ["/", "/asyncio-run"])
def test_asyncio_run_in_a_uwsgi_worker_makes_it_ignore_shutdown(tmp_path, path):
    """asyncio.run() (and asyncio.Runner) in the main thread put back Python's
    own SIGINT handler when they finish. uWSGI's master stops its workers with
    SIGINT: a worker that ran one no longer stops, and is killed when
    --worker-reload-mercy (3 s here) runs out. Why the snippet's idiom uses a
    plain new_event_loop()."""
    (tmp_path / "asyncio_run_app.py").write_text(ASYNCIO_RUN_APP)
    args = ("--pythonpath", str(tmp_path), "--worker-reload-mercy", "3")
    with uwsgi_router("asyncio_run_app:application", args=args) as (url, proc):
        headers = ["Connection: close"]
        with open_request(url, path, headers=headers, timeout=30) as sock:
            assert read_to_close(sock).endswith(b"\r\n\r\nok")
        # Signal once the worker is back in uWSGI's loop, idle, waiting for
        # the next request.
        assert wait_until(lambda: idle_in_epoll(proc), timeout=10)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log = read_log(proc)
    ignored = "is taking too much time to die...NO MERCY !!!" in log
    assert ignored == (path == "/asyncio-run"), log
    assert "goodbye to uWSGI." in log
