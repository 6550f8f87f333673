"""What each server prints when a client leaves in the middle of a stream of
snippets/logs.py, measured: the client reads three lines and closes its
socket; the test waits (polling, with a deadline) for the generator's own
"client left" line, then reads everything the server printed after it
answered."""

import re
import socket

import pytest

from tests.servers import serve, wait_until

pytestmark = pytest.mark.live

UWSGI_QUIET = ("--ignore-sigpipe", "--ignore-write-errors", "--disable-write-exception")
NOISE = re.compile(r"(?i)error|broken|reset|disconnect|traceback|sigpipe")

SERVERS = {
    "flask-run": ("flask", "tests.deploy.logs_app", (), {}),
    "gunicorn-sync": ("gunicorn", "tests.deploy.logs_app:app", (), {}),
    "gunicorn-gthread": (
        "gunicorn",
        "tests.deploy.logs_app:app",
        (),
        {"worker_class": "gthread"},
    ),
    "gunicorn-gevent": (
        "gunicorn",
        "tests.deploy.logs_app:app",
        (),
        {"worker_class": "gevent"},
    ),
    "waitress": ("waitress", "tests.deploy.logs_app:app", (), {}),
    "uwsgi": ("uwsgi", "tests.deploy.logs_app:app", (), {}),
    "uwsgi-quiet": ("uwsgi", "tests.deploy.logs_app:app", UWSGI_QUIET, {}),
}

# What each server printed about the client leaving, besides the app's line.
EXPECTED = {
    "flask-run": [],
    "gunicorn-sync": [],
    "gunicorn-gthread": [],
    "gunicorn-gevent": [],
    "waitress": ["waitress INFO Client disconnected while serving /stream"],
    "uwsgi": [
        "SIGPIPE: writing to a closed pipe/socket/fd",
        "uwsgi_response_write_body_do(): Broken pipe",
        "OSError: write error",
    ],
    "uwsgi-quiet": [],
}


def read_three_lines_and_leave(url):
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while b"line 3\n" not in data:
            data += sock.recv(4096)


@pytest.mark.parametrize("name", SERVERS)
def test_what_a_server_prints_when_the_client_leaves(name):
    """Every server closes the generator (its GeneratorExit branch logs
    "client left after N lines" at INFO). Werkzeug's server and gunicorn
    (sync, gthread, gevent) print nothing else; waitress prints one INFO
    line; uWSGI prints a SIGPIPE warning, the write error and an OSError,
    unless told not to."""
    kind, target, args, options = SERVERS[name]
    with serve(kind, target, *args, **options) as server:
        start = len(server.log())
        read_three_lines_and_leave(server.url)
        assert wait_until(lambda: "client left after" in server.log(), 20)
        if name == "waitress":  # its line may follow the app's
            wait_until(lambda: "Client disconnected" in server.log(), 5)
        printed = server.log()[start:]
    assert re.search(r"snippets\.logs INFO client left after \d+ lines", printed)
    noise = [line for line in printed.splitlines() if NOISE.search(line)]
    for expected in EXPECTED[name]:
        assert any(expected in line for line in noise), (expected, noise)
    if not EXPECTED[name]:
        assert noise == [], noise


# uvicorn stops waiting for a running task after --timeout-graceful-shutdown
# (2 s in the launcher); hypercorn serves from one process (--workers 0), so
# stopping it cannot leave a worker behind.
ASGI_SERVERS = {
    "uvicorn-a2wsgi": ("uvicorn", (), {"bridge": "a2wsgi"}),
    "uvicorn-asgiref": ("uvicorn", (), {"bridge": "asgiref"}),
    "hypercorn": ("hypercorn", ("--graceful-timeout", "2", "--workers", "0"), {}),
}
CANCELLED = "ERROR:    Cancel 1 running task(s), timeout graceful shutdown exceeded"
SEND_FAILED = "asyncio WARNING socket.send() raised exception."


@pytest.mark.parametrize("name", ASGI_SERVERS)
def test_what_an_asgi_server_prints_when_the_client_leaves(name):
    """Behind uvicorn's bridges and hypercorn the generator is not closed
    when the client leaves, so its "client left" line never comes. uvicorn
    (a2wsgi or WsgiToAsgi) prints nothing about the departure; on SIGTERM it
    waits its 2-second graceful timeout for the stream, then reports the
    task it cancelled (a2wsgi adds a CancelledError traceback), and the
    generator still logs nothing. hypercorn's stream goes on writing to the
    closed socket, and asyncio logs one WARNING per write: the test waits
    for ten of them."""
    kind, args, options = ASGI_SERVERS[name]
    target = "tests.deploy.logs_app:app"
    with serve(kind, target, *args, stop_after=5, **options) as server:
        start = len(server.log())
        read_three_lines_and_leave(server.url)
        if kind == "hypercorn":
            assert wait_until(lambda: server.log().count(SEND_FAILED) >= 10, 20)
            printed = server.log()[start:]
        else:
            server.stop(timeout=10)
            printed = server.log()[start:]
            assert server.proc.returncode is not None
            assert "Finished server process" in printed
    assert "client left after" not in printed
    if kind == "hypercorn":
        assert set(printed.splitlines()) == {SEND_FAILED}, printed
        return
    before_shutdown = printed.split("INFO:     Shutting down")[0]
    assert not NOISE.search(before_shutdown), before_shutdown
    assert CANCELLED in printed
    traceback = "Exception in ASGI application" in printed
    assert traceback == (name == "uvicorn-a2wsgi"), printed
    if traceback:
        assert "CancelledError: Task cancelled" in printed
