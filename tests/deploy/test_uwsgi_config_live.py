"""deploy/uwsgi: the uwsgi.ini the page shows, used as it is (its module
``app:app`` is a two-line app.py that imports snippets/uwsgi.py)."""

import tempfile
from pathlib import Path

import pytest

from tests.deploy.test_uwsgi_live import (
    END,
    arrived_before_next_made,
    dechunk,
    get,
    read_body,
    read_head,
)
from tests.servers import UWSGI, free_port, process_server, read_log, wait_until

pytestmark = pytest.mark.live

INI = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "_conf" / "uwsgi.ini"


@pytest.fixture(scope="module")
def port():
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "app.py").write_text("from snippets.uwsgi import app  # noqa\n")
        argv = [str(UWSGI), "--ini", str(INI)]
        with process_server(argv, port, env={"PORT": str(port)}, cwd=Path(tmp)) as p:
            assert wait_until(lambda: read_log(p).count("spawned uWSGI worker") == 2)
            yield port


def test_the_uwsgi_ini_streams_chunked_and_keeps_the_connection(port):
    """Two events 300 ms apart: the first arrives before the second is made,
    the body is chunked with its last chunk, and the same connection then
    serves a second request."""
    with get(port, "/events?count=2&interval_ms=300") as sock:
        status, headers, rest = read_head(sock)
        raw, how, arrivals = read_body(sock, rest, wait=2.0, chunked=True)
        assert (status, headers.get("transfer-encoding")) == (
            "HTTP/1.1 200 OK",
            "chunked",
        )
        body, terminated = dechunk(raw)
        assert terminated and how == "open" and body.endswith(END)
        assert arrived_before_next_made(arrivals, raw) == [True]
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_head(sock)[0] == "HTTP/1.1 200 OK"
