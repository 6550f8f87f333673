"""An exception after the first byte, over real sockets: proof for
docs/state/errors.rst. Werkzeug's server runs in this process; gunicorn and
``flask run --debug`` run in their own, and the tests read their logs."""

import contextlib
import logging
import sys
import time

import httpx
import pytest

from snippets.errors import IncompleteStream, app, read_districts
from tests.servers import (
    free_port,
    gunicorn,
    open_request,
    process_server,
    read_log,
    read_to_close,
)

pytestmark = pytest.mark.live

HEAD_END = b"\r\n\r\n"
FIRST_CHUNK = b'18\r\n{"district": "Frogner"}\n\r\n'


def received(url, path):
    """The exact bytes a client receives, until the server closes."""
    with open_request(url, path) as sock:
        return read_to_close(sock)


@contextlib.contextmanager
def serve(kind):
    """Yield (base URL, function returning what the server logged so far)."""
    if kind in {"sync", "gthread"}:
        args = ("--threads", "2") if kind == "gthread" else ()
        target = "snippets.errors:app"
        with gunicorn(target, worker_class=kind, args=args) as (url, proc):
            yield url, lambda: read_log(proc)
    elif kind == "flask run --debug":
        port = free_port()
        argv = [
            sys.executable, "-m", "flask", "--app", "snippets.errors",
            "run", "--debug", "--no-reload", "--port", str(port),
        ]  # fmt: skip
        with process_server(argv, port) as proc:
            yield f"http://127.0.0.1:{port}", lambda: read_log(proc)
    else:
        raise AssertionError(kind)


def wait_for_log(log, text, timeout=10):
    deadline = time.monotonic() + timeout
    while text not in log() and time.monotonic() < deadline:
        time.sleep(0.05)
    return log()


def test_werkzeug_truncates_body_and_skips_errorhandler(live_server, caplog):
    caplog.set_level(logging.INFO)
    data = received(live_server(app), "/broken")
    head, _, body = data.partition(HEAD_END)
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Type: application/x-ndjson" in head
    assert b"Transfer-Encoding: chunked" in head
    assert body == FIRST_CHUNK  # no "0\r\n\r\n": the body is cut short
    assert "the 500 handler ran" not in caplog.text
    assert "Exception on /broken" not in caplog.text  # Flask never saw it


@pytest.mark.parametrize("kind", ["sync", "gthread"])
def test_gunicorn_truncates_body_and_logs_error(kind):
    with serve(kind) as (url, log):
        head, _, body = received(url, "/broken").partition(HEAD_END)
        text = wait_for_log(log, "RuntimeError: the data source failed")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Content-Type: application/x-ndjson" in head
    assert b"Transfer-Encoding: chunked" in head
    assert body == FIRST_CHUNK
    assert "[ERROR] Error handling request" in text
    assert "RuntimeError: the data source failed" in text
    assert "the 500 handler ran" not in text


def test_flask_run_debug_hides_truncation():
    """The debugger catches the exception, cannot send its 500 page (the
    headers are out), logs a line, and lets the body end normally."""
    with serve("flask run --debug") as (url, log):
        head, _, body = received(url, "/broken").partition(HEAD_END)
        text = wait_for_log(log, "RuntimeError: the data source failed")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert body == FIRST_CHUNK + b"0\r\n\r\n"  # looks complete
    assert "Debugging middleware caught exception in streamed response" in text


def test_httpx_raises_remote_protocol_error_on_truncated_body(live_server):
    url = live_server(app)
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
        httpx.get(url + "/broken", timeout=10)


@pytest.mark.parametrize("kind", ["werkzeug", "sync", "gthread"])
def test_client_tells_complete_error_and_truncated_streams(kind, live_server):
    with contextlib.ExitStack() as stack:
        if kind == "werkzeug":
            url = live_server(app)
        else:
            url, _ = stack.enter_context(serve(kind))
        assert read_districts(url + "/cities/oslo") == ["Grünerløkka", "Frogner"]
        with pytest.raises(IncompleteStream, match="server said: the district"):
            read_districts(url + "/cities/oslo?fail_after=1")
        with pytest.raises(IncompleteStream, match="connection broke after 1 records"):
            read_districts(url + "/broken")


def test_client_catches_what_the_debugger_hides():
    with (
        serve("flask run --debug") as (url, _),
        pytest.raises(IncompleteStream, match="no end record after 1 records"),
    ):
        read_districts(url + "/broken")


def test_in_band_error_is_logged_with_traceback(live_server, caplog):
    url = live_server(app)
    with pytest.raises(IncompleteStream):
        read_districts(url + "/cities/lima?fail_after=1")
    [record] = [r for r in caplog.records if r.name == app.logger.name]
    assert record.getMessage() == "failed after 1 records"
    assert record.exc_info[0] is ConnectionError
