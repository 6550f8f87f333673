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
    "waitress": ("waitress", "tests.deploy.logs_app:app", (), {}),
    "uwsgi": ("uwsgi", "tests.deploy.logs_app:app", (), {}),
    "uwsgi-quiet": ("uwsgi", "tests.deploy.logs_app:app", UWSGI_QUIET, {}),
}

# What each server printed about the client leaving, besides the app's line.
EXPECTED = {
    "flask-run": [],
    "gunicorn-sync": [],
    "gunicorn-gthread": [],
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
    print nothing else; waitress prints one INFO line; uWSGI prints a
    SIGPIPE warning, the write error and an OSError, unless told not to."""
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
