"""Disconnects over a real socket: proof for docs/state/lifecycle.rst.

Each server runs snippets/lifecycle_disconnect.py (lifecycle.py's app with
``/wait``). The Werkzeug server runs in this
process, so the test reads ``EVENTS``; gunicorn runs in another process, so
the test reads the ``event: ...`` lines that ``app.logger`` wrote to its log.
"""

import re
import time
from contextlib import contextmanager

import pytest

from snippets import lifecycle, lifecycle_disconnect
from tests.flask_versions import run_with_flask
from tests.servers import (
    gunicorn,
    open_request,
    read_log,
    wait_until,
    werkzeug_server,
)

pytestmark = pytest.mark.live

CLEANUP = [
    "client gone",
    "generator finally",
    "teardown_request",
    "teardown_appcontext",
    "call_on_close",
]


@contextmanager
def serve(kind):
    """Yield (base URL, function returning the events recorded so far)."""
    if kind == "werkzeug":
        lifecycle.EVENTS.clear()
        with werkzeug_server(lifecycle_disconnect.app) as url:
            yield url, lambda: list(lifecycle.EVENTS)
    else:
        args = ("--threads", "4") if kind == "gthread" else ()
        target = "snippets.lifecycle_disconnect:app"
        with gunicorn(target, worker_class=kind, args=args) as (url, proc):
            yield url, lambda: re.findall(r"event: (.+)", read_log(proc))


def after_view(events):
    """The events after the first teardown (the view's), i.e. the body's."""
    return events[events.index("teardown_appcontext") + 1 :]


@pytest.mark.parametrize("kind", ["werkzeug", "sync", "gthread"])
def test_cleanup_runs_after_disconnect_in_order(kind):
    with serve(kind) as (url, events):
        sock = open_request(url, "/wait?seconds=30&beat=yes")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        assert wait_until(lambda: "body starts" in events(), 30)
        dropped = time.monotonic()
        sock.close()
        assert wait_until(lambda: "call_on_close" in events(), 30), events()
        noticed_after = time.monotonic() - dropped
        assert after_view(events()) == ["body starts", *CLEANUP]
    assert noticed_after < 5  # a heartbeat every 0.05 s; the stream had 30 s


@pytest.mark.parametrize("kind", ["werkzeug", "sync", "gthread"])
def test_empty_yields_never_notice_disconnect(kind):
    """The generator yields "" until its deadline, 4 s after the request.
    The client leaves at once, yet the generator runs on to the deadline:
    only then does it write real bytes, and a failed write (or the end of
    the generator) ends it."""
    with serve(kind) as (url, events):
        sent = time.monotonic()
        sock = open_request(url, "/wait?seconds=4&beat=no")
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        assert wait_until(lambda: "body starts" in events(), 30)
        sock.close()
        dropped = time.monotonic() - sent
        assert wait_until(lambda: "generator finally" in events(), 20), events()
        ended = time.monotonic() - sent
        assert wait_until(lambda: "call_on_close" in events(), 30), events()
        assert after_view(events())[0] == "body starts"
        assert after_view(events())[-4:] == CLEANUP[1:]
    assert dropped < 3, "the client left too late for this test to mean anything"
    assert ended >= 4  # the deadline, not the disconnect, ended the generator


def test_stream_that_completes_has_no_client_gone_event():
    with serve("werkzeug") as (url, events):
        sock = open_request(url, "/wait?seconds=1&beat=yes")
        with sock, sock.makefile("rb") as reader:
            body = reader.read()
        assert body.endswith(b"5\r\ndone\n\r\n0\r\n\r\n")
        assert wait_until(lambda: "call_on_close" in events(), 30)
        assert after_view(events()) == [
            "body starts",
            "body ends",
            "generator finally",
            "teardown_request",
            "teardown_appcontext",
            "call_on_close",
        ]


# The version boundary (pallets/flask#5774): with stream_with_context,
# Flask 3.1.1 ran teardown once, when the stream ended; since 3.1.2 it runs
# twice: when the view returns and again when the generator ends.
TEARDOWN_SCRIPT = """
from importlib.metadata import version
from flask import Flask, stream_with_context

app = Flask(__name__)
events = []

@app.teardown_request
def teardown(exc):
    events.append("teardown")

@app.get("/")
def view():
    def generate():
        events.append("body starts")
        yield "x"
    return stream_with_context(generate())

with app.test_client().get("/") as response:
    response.get_data()
print(repr((version("flask"), events)))
"""


@pytest.mark.parametrize(
    ("release", "events"),
    [
        ("3.1.1", ["body starts", "teardown"]),
        ("3.1.2", ["teardown", "body starts", "teardown"]),
    ],
)
def test_teardown_count_with_stream_with_context_changed_in_3_1_2(
    tmp_path, release, events
):
    assert run_with_flask(release, tmp_path, TEARDOWN_SCRIPT) == (release, events)
