"""formats/spreadsheets over a real socket: a client that leaves in the middle
of a download leaves no temporary file and no open one, on Werkzeug's
threaded server and on gunicorn's gthread worker, each with a temporary
folder of its own (TMPDIR)."""

import contextlib
import os
import socket
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from snippets import spreadsheet
from tests.formats.test_spreadsheets import open_fds
from tests.servers import (
    free_port,
    process_server,
    read_until,
    wait_until,
    werkzeug_server,
)

pytestmark = pytest.mark.live


@contextlib.contextmanager
def serve(kind, folder):
    """Yield (base URL, pid of the process that runs the app)."""
    if kind == "werkzeug":
        saved, tempfile.tempdir = tempfile.tempdir, str(folder)
        try:
            with werkzeug_server(spreadsheet.app) as url:
                yield url, os.getpid()
        finally:
            tempfile.tempdir = saved
    else:
        port = free_port()
        argv = [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--worker-class", "gthread", "--threads", "4", "--workers", "1",
            "snippets.spreadsheet:app",
        ]  # fmt: skip
        with process_server(argv, port, env={"TMPDIR": str(folder)}) as proc:
            master = psutil.Process(proc.pid)
            # The arbiter listens before it forks its worker: wait for it.
            assert wait_until(lambda: len(master.children()) == 1, 30)
            (worker,) = master.children()
            yield f"http://127.0.0.1:{port}", worker.pid


def slow_reader(url, path):
    """Connect with a tiny receive buffer and read only the headers: the
    server cannot hand a body of a megabyte or more to the kernel at once."""
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(120)
    sock.connect((parts.hostname, parts.port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
    head = read_until(sock, b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return sock


def app_fds(folder, pid):
    """Open files in ``folder``, less gunicorn's own: each worker holds an
    unlinked heartbeat file, ``wgunicorn-*``, in the temporary folder."""
    return [
        fd
        for fd in open_fds(folder, pid)
        if "wgunicorn-" not in os.readlink(f"/proc/{pid}/fd/{fd}")
    ]


@pytest.mark.parametrize("kind", ["werkzeug", "gthread"])
def test_client_that_leaves_mid_download_leaves_no_file(kind, tmp_path):
    folder = tmp_path / "tmp"
    folder.mkdir()
    with serve(kind, folder) as (url, pid):
        # Built first: the server holds one unnamed file while it sends it.
        sock = slow_reader(url, "/built.xlsx?rows=40000")
        assert list(folder.iterdir()) == []  # no name in the folder at all
        assert wait_until(lambda: len(app_fds(folder, pid)) == 1, 30)
        sock.close()  # mid-download: the rest of the file was never read
        assert wait_until(lambda: app_fds(folder, pid) == [], 30)

        # Streamed: nothing on disk at any time, finished or not.
        sock = slow_reader(url, "/export.xlsx?rows=200000")
        assert sock.recv(4096)
        assert list(folder.iterdir()) == [] and app_fds(folder, pid) == []
        sock.close()
    assert list(Path(folder).iterdir()) == []
