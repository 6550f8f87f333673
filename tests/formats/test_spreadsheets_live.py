"""formats/spreadsheets over a real socket: a client that leaves in the middle
of a download leaves no temporary file and no open one, on Werkzeug's
threaded server and on gunicorn's gthread worker, each with a temporary
folder of its own (TMPDIR).

To leave *in the middle* for certain, whatever the socket buffers hold, the
app is wrapped in ``PauseAfterFirstChunk``: it sends the body's first chunk,
then waits for the test's go-ahead. The client reads that chunk, closes the
connection, and only then lets the server go on writing.
"""

import contextlib
import os
import sys
import tempfile
import time

import psutil
import pytest
from werkzeug.wsgi import ClosingIterator

from snippets import spreadsheets as spreadsheet
from snippets import spreadsheets_built
from tests.formats.test_spreadsheets import open_fds
from tests.servers import (
    free_port,
    open_request,
    process_server,
    read_until,
    wait_until,
    werkzeug_server,
)

pytestmark = pytest.mark.live


class PauseAfterFirstChunk:
    """WSGI middleware: the first chunk of each body, then a wait until
    ``released()`` is true, then the rest. ``close()`` reaches the app's body."""

    def __init__(self, app, released):
        self.app, self.released = app, released

    def __call__(self, environ, start_response):
        body = self.app(environ, start_response)
        return ClosingIterator(self.paused(body), getattr(body, "close", None))

    def paused(self, body):
        chunks = iter(body)
        yield next(chunks)
        while not self.released():
            time.sleep(0.01)
        yield from chunks


def released_by_file():
    return os.path.exists(os.environ["FSP_RELEASE"])


# What gunicorn serves: "tests.formats.test_spreadsheets_live:paused_app".
def both_exports(environ, start_response):
    """/built.xlsx from snippets/spreadsheets_built.py, the rest from
    snippets/spreadsheets.py."""
    built = environ["PATH_INFO"] == "/built.xlsx"
    app = spreadsheets_built.app if built else spreadsheet.app
    return app(environ, start_response)


paused_app = PauseAfterFirstChunk(both_exports, released_by_file)


def app_fds(folder, pid):
    """Open files in ``folder``, less gunicorn's own: each worker holds an
    unlinked heartbeat file, ``wgunicorn-*``, in the temporary folder."""
    return [
        fd
        for fd in open_fds(folder, pid)
        if "wgunicorn-" not in os.readlink(f"/proc/{pid}/fd/{fd}")
    ]


@contextlib.contextmanager
def serve(kind, folder, release):
    """Yield (base URL, pid of the process that runs the app). The server
    holds each body after its first chunk until ``release`` exists."""
    if kind == "werkzeug":
        saved, tempfile.tempdir = tempfile.tempdir, str(folder)
        app = PauseAfterFirstChunk(both_exports, release.exists)
        try:
            with werkzeug_server(app) as url:
                yield url, os.getpid()
        finally:
            tempfile.tempdir = saved
    else:
        port = free_port()
        argv = [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--worker-class", "gthread", "--threads", "4", "--workers", "1",
            "tests.formats.test_spreadsheets_live:paused_app",
        ]  # fmt: skip
        env = {"TMPDIR": str(folder), "FSP_RELEASE": str(release)}
        with process_server(argv, port, env=env) as proc:
            master = psutil.Process(proc.pid)
            # The arbiter listens before it forks its worker: wait for it.
            assert wait_until(lambda: len(master.children()) == 1, 30)
            (worker,) = master.children()
            yield f"http://127.0.0.1:{port}", worker.pid


@pytest.mark.parametrize("kind", ["werkzeug", "gthread"])
def test_client_that_leaves_mid_download_leaves_no_file(kind, tmp_path):
    folder, release = tmp_path / "tmp", tmp_path / "release"
    folder.mkdir()
    with serve(kind, folder, release) as (url, pid):
        for path, holds_a_file in [
            ("/built.xlsx?rows=1000", True),
            ("/export.xlsx?rows=1000", False),
        ]:
            release.unlink(missing_ok=True)
            sock = open_request(url, path, timeout=60)
            head = read_until(sock, b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            assert b"PK\x03\x04" in read_until(sock, b"PK\x03\x04", head)
            # Paused mid-body: the built export holds its one unnamed file.
            assert list(folder.iterdir()) == []
            assert len(app_fds(folder, pid)) == (1 if holds_a_file else 0)
            sock.close()  # the client leaves with most of the file unread
            release.touch()
            assert wait_until(lambda: app_fds(folder, pid) == [], 30)
            assert list(folder.iterdir()) == []
