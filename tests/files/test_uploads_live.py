"""Downloads and uploads against real servers on 127.0.0.1: gunicorn, waitress,
Werkzeug's server and nginx. Proof for files/downloads and files/uploads."""

import contextlib
import hashlib
import http.client
import json
import socket
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from snippets.uploads import app as uploads_app
from tests.servers import (
    ROOT,
    free_port,
    gunicorn,
    nginx,
    process_server,
    read_to_close,
    wait_until,
    waitress,
)

pytestmark = pytest.mark.live


FILES = ROOT / "snippets" / "files"


MiB = 1024 * 1024


@pytest.fixture
def upload_dir(tmp_path, monkeypatch):
    folder = tmp_path / "uploads"
    monkeypatch.setenv("FLASK_UPLOAD_DIR", str(folder))
    monkeypatch.setitem(uploads_app.config, "UPLOAD_DIR", str(folder))
    return folder


def worker_of(proc):
    """gunicorn's one worker process (the child of the arbiter)."""
    deadline = time.monotonic() + 20
    while not (children := psutil.Process(proc.pid).children()):
        assert time.monotonic() < deadline, "gunicorn started no worker"
        time.sleep(0.05)
    return children[0]


def generated_body(size, block=MiB):
    """Yield ``size`` bytes made on the fly (nothing stored in the test)."""
    pattern = hashlib.sha256(b"seed").digest() * (block // 32)
    for start in range(0, size, block):
        yield pattern[: min(block, size - start)]


def expected_digest(size):
    digest = hashlib.sha256()
    for chunk in generated_body(size):
        digest.update(chunk)
    return digest.hexdigest()


def put(url, path, body, headers):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        conn.request("PUT", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_chunked_upload_through_the_dev_server(upload_dir, live_server):
    url = live_server(uploads_app)
    size = 3 * MiB + 5
    # A generator and no Content-Length: http.client sends it chunked.
    status, body = put(url, "/uploads/data.bin", generated_body(size), {})
    assert status == 201
    assert json.loads(body) == {
        "name": "data.bin",
        "size": size,
        "sha256": expected_digest(size),
    }
    assert (upload_dir / "data.bin").stat().st_size == size


def test_chunked_upload_over_the_limit_gets_413_and_leaves_nothing(
    upload_dir, live_server, monkeypatch
):
    """No Content-Length to check up front: Werkzeug's LimitedStream raises
    413 while reading, once the limit is passed."""
    monkeypatch.setitem(uploads_app.config, "MAX_CONTENT_LENGTH", MiB)
    url = live_server(uploads_app)
    status, body = put(
        url,
        "/uploads/big.bin",
        generated_body(MiB + 1, block=64 * 1024),
        {},
    )
    assert status == 413
    assert body == b"upload refused: the limit is 1,048,576 bytes\n"
    assert list(upload_dir.iterdir()) == []


def test_large_upload_keeps_gunicorn_memory_flat(upload_dir):
    size = 256 * MiB
    with gunicorn("snippets.uploads:app", args=("--timeout", "120")) as (url, proc):
        put(url, "/uploads/warm-up", b"x", {"Content-Length": "1"})
        worker = worker_of(proc)
        before = worker.memory_info().rss
        status, body = put(
            url, "/uploads/big.bin", generated_body(size), {"Content-Length": str(size)}
        )
        after = worker.memory_info().rss
    assert status == 201, body
    assert json.loads(body)["sha256"] == expected_digest(size)
    assert (upload_dir / "big.bin").stat().st_size == size
    growth = after - before
    print(f"worker RSS {before / MiB:.1f} MiB -> {after / MiB:.1f} MiB")
    assert growth < 16 * MiB, f"RSS grew by {growth / MiB:.1f} MiB for 256 MiB"


@pytest.fixture
def body_temp():
    """Where nginx may write a request body: nginx started as root writes as
    its unprivileged worker user, which cannot enter the launcher's private
    temporary folder (that gives a 500 for any body over 16 KiB)."""
    with tempfile.TemporaryDirectory(prefix="fsp-nginx-") as tmp:
        Path(tmp).chmod(0o755)
        yield f"{tmp}/client_body"


def part_files(folder):
    return list(folder.glob(".upload-*.part")) if folder.exists() else []


def half_then_rest(url, upload_dir, *, started_within):
    """Send the headers and half of a 4 MiB body; report whether the view
    started (its .part file exists) within ``started_within`` seconds; send
    the rest and return (started_early, status)."""
    size = 4 * MiB
    parts = urlsplit(url)
    body = b"u" * size
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(
            b"PUT /uploads/slow.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + f"Content-Length: {size}\r\n\r\n".encode()
            + body[: size // 2]
        )
        deadline = time.monotonic() + started_within
        while not (started := bool(part_files(upload_dir))):
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        sock.sendall(body[size // 2 :])
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    return started, int(response.split(b" ", 2)[1])


def test_gunicorn_calls_the_app_before_the_body_is_complete(upload_dir):
    """The control for the two tests below: gunicorn alone hands the view a
    stream while the client is still sending, so the .part file appears."""
    with gunicorn("snippets.uploads:app") as (url, _):
        started, status = half_then_rest(url, upload_dir, started_within=15)
    assert started
    assert status == 201


def test_waitress_calls_the_app_only_after_the_whole_body(upload_dir):
    with waitress("snippets.uploads:app") as url:
        started, status = half_then_rest(url, upload_dir, started_within=2)
    assert not started  # waitress was still buffering the body
    assert status == 201
    assert (upload_dir / "slow.bin").stat().st_size == 4 * MiB


CONF = ROOT / "docs" / "files" / "_conf" / "uploads.nginx.conf"
BUFFERING_OFF = "    proxy_request_buffering off;   # pass the body on as it comes\n"


def upload_conf(upstream, body_temp, *, drop=""):
    """The page's nginx config as it is (less the line ``drop``), pointed at
    this test's app; the body temp path is this machine's, outside it."""
    text = CONF.read_text()
    assert text.count("http://127.0.0.1:8000") == 1 and drop in text
    text = text.replace(drop, "").replace("http://127.0.0.1:8000", upstream)
    return f"client_body_temp_path {body_temp};\n{text}"


@pytest.mark.nginx
def test_nginx_buffers_the_request_body_by_default(upload_dir, body_temp):
    """The page's config without its proxy_request_buffering line."""
    with contextlib.ExitStack() as stack:
        app_url, _ = stack.enter_context(gunicorn("snippets.uploads:app"))
        conf = upload_conf(app_url, body_temp, drop=BUFFERING_OFF)
        url = stack.enter_context(nginx(conf))
        started, status = half_then_rest(url, upload_dir, started_within=2)
    assert not started
    assert status == 201


@pytest.mark.nginx
def test_nginx_passes_the_body_on_with_request_buffering_off(upload_dir, body_temp):
    """The page's config, as it is."""
    with contextlib.ExitStack() as stack:
        app_url, _ = stack.enter_context(gunicorn("snippets.uploads:app"))
        url = stack.enter_context(nginx(upload_conf(app_url, body_temp)))
        started, status = half_then_rest(url, upload_dir, started_within=15)
    assert started
    assert status == 201


# nginx in front of the app, as on the downloads page: its config file as it
# is, with no client_max_body_size.
DOWNLOADS_CONF = ROOT / "docs" / "files" / "_conf" / "downloads.nginx.conf"


@pytest.mark.nginx
def test_nginx_refuses_bodies_over_1_mib_by_default(upload_dir):
    with gunicorn("snippets.uploads:app") as (app_url, _):
        block = (
            DOWNLOADS_CONF.read_text()
            .replace("/srv/app/files/", f"{FILES}/")
            .replace("http://127.0.0.1:8000", app_url)
        )
        with nginx(block) as url:
            status, body = put(
                url, "/uploads/two.bin", b"2" * (2 * MiB), {"Content-Length": "2097152"}
            )
    assert status == 413
    assert b"nginx" in body  # nginx's own page: the app never saw the request
    assert not upload_dir.exists()


# --- uploads cut short: never stored ---------------------------------------------


@contextlib.contextmanager
def upload_server(name):
    """The uploads snippet under one server of the matrix; yields its URL."""
    if name == "werkzeug":
        from tests.servers import werkzeug_server

        with werkzeug_server(uploads_app) as url:
            yield url
    elif name == "waitress":
        with waitress("snippets.uploads:app") as url:
            yield url
    else:
        worker, *args = name.split()
        with gunicorn("snippets.uploads:app", worker_class=worker, args=args) as (
            url,
            _,
        ):
            yield url


UPLOAD_SERVERS = ["gthread --threads 4", "gevent", "sync", "waitress", "werkzeug"]


@pytest.mark.parametrize("server", UPLOAD_SERVERS, ids=lambda s: s.split()[0])
def test_upload_cut_short_is_not_stored(upload_dir, server):
    """Content-Length says 10 MiB, 3 MiB come, then the client hangs up. No
    server may make that a stored file: the old target stays, no .part file
    is left, and the server still takes the next upload whole."""
    upload_dir.mkdir()
    (upload_dir / "target.bin").write_bytes(b"old")
    streams = server != "waitress"  # waitress buffers the body before the app
    with upload_server(server) as url:
        parts = urlsplit(url)
        sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
        sock.sendall(
            b"PUT /uploads/target.bin HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {10 * MiB}\r\n\r\n".encode()
            + b"c" * (3 * MiB)
        )
        if streams:  # the view is reading: its .part file exists
            assert wait_until(lambda: part_files(upload_dir), timeout=60)
        sock.close()
        assert wait_until(lambda: not part_files(upload_dir), timeout=60)
        status, body = put(url, "/uploads/next.bin", b"n" * 1000, {})
    assert status == 201, body
    assert (upload_dir / "target.bin").read_bytes() == b"old"
    assert sorted(p.name for p in upload_dir.iterdir()) == ["next.bin", "target.bin"]


# --- every route that reads a body: a limit before the body is read ---------------

BODY_ROUTES = [
    ("POST /broadcast/publish", "application/json"),
    ("POST /tokens/generate", "application/json"),
    ("POST /jobs/jobs", "application/x-www-form-urlencoded"),
    ("POST /lifecycle/upload", "multipart/form-data; boundary=b"),
]


def body_apps():
    """The four snippets whose views read a request body, in one WSGI app
    (one gunicorn for all: `gunicorn 'tests.files.test_uploads_live:body_apps()'`)."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from snippets import broadcast, lifecycle
    from snippets import jobs as job_progress
    from snippets import tokens as token_stream

    return DispatcherMiddleware(
        uploads_app,
        {
            "/broadcast": broadcast.app,
            "/tokens": token_stream.app,
            "/jobs": job_progress.app,
            "/lifecycle": lifecycle.app,
        },
    )


def peak_rss(process):
    """The process's peak resident memory so far (VmHWM), in bytes."""
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) * 1024


def send_big_body(url, request_line, content_type, *, size, chunked):
    """Send ``size`` bytes (1 MiB at a time) until done or refused; return the
    status the server answered with."""
    parts = urlsplit(url)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    head = f"{request_line} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
    block = b"[" * MiB
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(f"{head}{framing}\r\nConnection: close\r\n\r\n".encode())
        with contextlib.suppress(OSError):  # refused: the server stops reading
            for _ in range(size // MiB):
                sock.sendall(b"100000\r\n" + block + b"\r\n" if chunked else block)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        return int(read_to_close(sock).split(b" ", 2)[1])


@contextlib.contextmanager
def body_server(server):
    """The four body routes under gunicorn (gthread or gevent) or waitress;
    yields (url, the process that runs the app)."""
    target = "tests.files.test_uploads_live:body_apps"
    if server == "waitress":  # one process: the app runs in its threads
        port = free_port()
        argv = [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}"]
        with process_server([*argv, "--call", target], port) as proc:
            yield f"http://127.0.0.1:{port}", psutil.Process(proc.pid)
    else:
        args = ("--threads", "2") if server == "gthread" else ()
        with gunicorn(f"{target}()", worker_class=server, args=args) as (url, proc):
            yield url, worker_of(proc)


# What a chunked 200 MiB body gets. gunicorn streams it to the app: a view
# that reads the body whole gets the first MAX_CONTENT_LENGTH bytes and no
# error from Werkzeug 3.1.9, so the cut JSON or form is a 400; the upload
# view reads past the limit, a 413. waitress reads the whole body first and
# hands the app its length (parser.py sets CONTENT_LENGTH): a 413 everywhere.
CHUNKED = {
    "gunicorn": {
        "POST /broadcast/publish": 400,
        "POST /tokens/generate": 400,
        "POST /jobs/jobs": 400,
        "POST /lifecycle/upload": 413,
    },
    "waitress": dict.fromkeys([line for line, _kind in BODY_ROUTES], 413),
}


@pytest.mark.parametrize(
    "server",
    # waitress reads all 1.6 GB before it answers: minutes on a loaded machine
    ["gthread", "gevent", pytest.param("waitress", marks=pytest.mark.timeout(360))],
)
def test_200_mib_body_is_refused_and_worker_memory_stays_small(server):
    """POST /publish once read a body of any size before checking it: 200 MiB
    took the worker to a 623 MiB peak, on gthread, gevent and waitress. Now
    every route that reads a body has MAX_CONTENT_LENGTH: a declared length
    over it is a 413 before the view reads the body; a chunked body is read
    only up to the limit (CHUNKED). waitress reads every body before it calls
    the app, into a temporary file past 512 KiB (inbuf_overflow), so its
    memory stays small too. 200 MiB to each route, both ways: the peak memory
    of the process that runs the app grows by under 16 MiB."""
    with body_server(server) as (url, worker):
        # Imports done, first request served (a loaded machine boots slowly).
        httpx.get(url + "/broadcast/warm-up", timeout=60)
        before = peak_rss(worker)
        statuses = {
            (line, chunked): send_big_body(
                url, line, kind, size=200 * MiB, chunked=chunked
            )
            for line, kind in BODY_ROUTES
            for chunked in (False, True)
        }
        growth = peak_rss(worker) - before
    print(f"{server}: {statuses}, peak RSS grew by {growth / MiB:.1f} MiB")
    assert {line: s for (line, chunked), s in statuses.items() if not chunked} == (
        dict.fromkeys([line for line, _kind in BODY_ROUTES], 413)
    )
    family = "waitress" if server == "waitress" else "gunicorn"
    assert {line: s for (line, chunked), s in statuses.items() if chunked} == CHUNKED[
        family
    ]
    assert growth < 16 * MiB
