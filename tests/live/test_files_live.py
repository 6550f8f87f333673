"""Downloads and uploads against real servers on 127.0.0.1: gunicorn, waitress,
Werkzeug's server and nginx. Proof for files/downloads and files/uploads."""

import contextlib
import hashlib
import http.client
import json
import shutil
import socket
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from snippets.downloads import app as downloads_app
from snippets.uploads import app as uploads_app
from tests.servers import (
    ROOT,
    gunicorn,
    nginx,
    open_request,
    read_to_close,
    wait_until,
    waitress,
)

pytestmark = pytest.mark.live

FILES = ROOT / "snippets" / "files"
ALPHABET = (FILES / "alphabet.txt").read_bytes()
MiB = 1024 * 1024
TOKEN = {"Authorization": "Bearer let-me-in"}


@pytest.fixture
def files_dir(monkeypatch):
    """A files folder with an 8 MiB file; servers started in the test see it.

    World-readable, outside pytest's private tmp_path: nginx started as root
    reads files as its unprivileged worker user."""
    with tempfile.TemporaryDirectory(prefix="fsp-files-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)
        shutil.copy(FILES / "alphabet.txt", folder)
        with (folder / "big.bin").open("wb") as out:
            for block in range(8):
                out.write(bytes([block]) * MiB)
        for path in folder.iterdir():
            path.chmod(0o644)
        monkeypatch.setenv("FLASK_FILES_DIR", str(folder))
        yield folder


@pytest.fixture
def report_dir(tmp_path, monkeypatch):
    """The server's temporary folder (TMPDIR), where make_report writes."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))  # for a server process
    monkeypatch.setattr(tempfile, "tempdir", str(folder))  # for one in a thread
    return folder


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


def read_syscalls_for(url, path, proc, **kwargs):
    """How many read-type system calls the worker made to serve one request."""
    httpx.get(url + "/files/alphabet.txt")  # warm up: imports, first request
    worker = worker_of(proc)
    before = worker.io_counters().read_count
    response = httpx.get(url + path, timeout=30, **kwargs)
    # The sync worker serves one request at a time: once a second request is
    # answered, the first one is completely finished (no sleep needed).
    httpx.get(url + "/files/alphabet.txt")
    return response, worker.io_counters().read_count - before - 1


# --- sendfile under gunicorn ----------------------------------------------------


def test_gunicorn_sends_a_file_with_sendfile(files_dir):
    """8 MiB in one sendfile() call: the worker makes about one read-type
    system call (Linux counts sendfile as one read and one write in
    /proc/PID/io), where reading 8 KiB blocks would take 1024."""
    with gunicorn("snippets.downloads:app") as (url, proc):
        response, reads = read_syscalls_for(url, "/files/big.bin", proc)
    assert response.status_code == 200
    assert len(response.content) == 8 * MiB
    assert reads < 10


def test_gunicorn_without_sendfile_reads_the_file_in_8_kib_blocks(files_dir):
    with gunicorn("snippets.downloads:app", args=("--no-sendfile",)) as (url, proc):
        response, reads = read_syscalls_for(url, "/files/big.bin", proc)
    assert len(response.content) == 8 * MiB
    assert reads >= 8 * MiB // 8192


def test_gunicorn_range_response_is_not_sent_with_sendfile(files_dir):
    with gunicorn("snippets.downloads:app") as (url, proc):
        response, reads = read_syscalls_for(
            url, "/files/big.bin", proc, headers={"Range": "bytes=1-"}
        )
    assert response.status_code == 206
    assert len(response.content) == 8 * MiB - 1
    assert reads >= 8 * MiB // 8192


def test_gunicorn_generator_download_reads_in_python(files_dir):
    with gunicorn("snippets.downloads:app") as (url, proc):
        response, reads = read_syscalls_for(url, "/chunks/big.bin", proc)
    assert len(response.content) == 8 * MiB
    assert "content-length" not in response.headers
    assert reads >= 8 * MiB // (64 * 1024)


def test_gunicorn_range_and_304_over_the_wire(files_dir):
    with gunicorn("snippets.downloads:app") as (url, _):
        first = httpx.get(url + "/files/alphabet.txt")
        ranged = httpx.get(url + "/files/alphabet.txt", headers={"Range": "bytes=-3"})
        cached = httpx.get(
            url + "/files/alphabet.txt",
            headers={"If-None-Match": first.headers["etag"]},
        )
        bad = httpx.get(url + "/files/alphabet.txt", headers={"Range": "bytes=99-"})
    assert first.headers["content-length"] == "27"
    assert (ranged.status_code, ranged.content) == (206, b"yz\n")
    assert ranged.headers["content-range"] == "bytes 24-26/27"
    assert (cached.status_code, cached.content) == (304, b"")
    assert bad.status_code == 416


def raw_request(url, target):
    """Send a request line exactly as given (clients normalise '../')."""
    with open_request(url, target, headers=["Connection: close"]) as sock:
        data = read_to_close(sock)
    return int(data.split(b" ", 2)[1]), data


@pytest.mark.parametrize(
    "target",
    ["/files/../downloads.py", "/files/%2e%2e/downloads.py", "/files/..%2fuploads.py"],
)
def test_gunicorn_traversal_gets_404(files_dir, target):
    with gunicorn("snippets.downloads:app") as (url, _):
        status, data = raw_request(url, target)
    assert status == 404
    assert b"import" not in data


# --- call_on_close and temporary files, on real servers --------------------------


@pytest.mark.parametrize("server", ["werkzeug", "gunicorn"])
def test_call_on_close_does_not_run_after_send_file_live(
    server, report_dir, live_server
):
    with contextlib.ExitStack() as stack:
        if server == "werkzeug":
            # Not threaded: requests are served one after the other.
            url = live_server(downloads_app, threaded=False)
        else:
            url, _ = stack.enter_context(gunicorn("snippets.downloads:app"))
        with httpx.Client(base_url=url, timeout=10) as client:
            got = client.get("/leaky-report.csv?rows=3")
            head = client.head("/leaky-report.csv?rows=3")
            client.get("/files/alphabet.txt")  # both requests above are over
    assert got.content == b"1,1\r\n2,4\r\n3,9\r\n"
    # GET: the callback never ran, the report is still there; HEAD: it ran.
    assert [p.name for p in report_dir.iterdir()] == [filename(got)]
    assert filename(head) != filename(got)


def filename(response):
    return response.headers["content-disposition"].split("filename=")[1]


def test_open_unlink_send_under_gunicorn(report_dir):
    with gunicorn("snippets.downloads:app") as (url, _):
        response = httpx.get(url + "/report.csv?rows=100000", timeout=30)
        httpx.get(url + "/files/alphabet.txt")
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.content.endswith(b"100000,10000000000\r\n")
    assert list(report_dir.iterdir()) == []


# --- X-Accel-Redirect through nginx ------------------------------------------------

ACCEL = """
    location /_protected/ {{
        internal;
        alias {files}/;
        types {{ text/plain txt; }}
    }}
    location / {{
        proxy_pass {upstream};
    }}
"""


@pytest.mark.nginx
def test_nginx_serves_the_file_the_app_authorised(files_dir):
    with gunicorn("snippets.downloads:app") as (app_url, _):
        # What the app itself sends: a header and an empty body.
        direct = httpx.get(app_url + "/protected/alphabet.txt", headers=TOKEN)
        block = ACCEL.format(files=files_dir, upstream=app_url)
        with nginx(block) as url:
            served = httpx.get(url + "/protected/alphabet.txt", headers=TOKEN)
            ranged = httpx.get(
                url + "/protected/alphabet.txt", headers={**TOKEN, "Range": "bytes=0-2"}
            )
            refused = httpx.get(url + "/protected/alphabet.txt")
            internal = httpx.get(url + "/_protected/alphabet.txt")
            missing = httpx.get(url + "/protected/nope.txt", headers=TOKEN)
    assert direct.content == b""
    assert direct.headers["x-accel-redirect"] == "/_protected/alphabet.txt"
    assert served.status_code == 200
    assert served.content == ALPHABET
    assert served.headers["content-length"] == "27"
    assert served.headers["content-type"] == "text/plain"
    # nginx's own validators: ETag "<mtime hex>-<size hex>", not Werkzeug's.
    stat = (files_dir / "alphabet.txt").stat()
    assert served.headers["etag"] == f'"{int(stat.st_mtime):x}-{stat.st_size:x}"'
    assert "x-accel-redirect" not in served.headers
    assert (ranged.status_code, ranged.content) == (206, b"abc")
    assert refused.status_code == 403
    assert internal.status_code == 404  # the internal location is not public
    assert missing.status_code == 404


@pytest.fixture
def files_beside_a_secret(monkeypatch):
    """<tmp>/files/alphabet.txt is on offer; <tmp>/secret.txt and
    <tmp>/files-private/secret.txt are not."""
    with tempfile.TemporaryDirectory(prefix="fsp-accel-") as tmp:
        root = Path(tmp)
        files, private = root / "files", root / "files-private"
        for folder in (root, files, private, files / "sub"):
            folder.mkdir(exist_ok=True)
            folder.chmod(0o755)
        shutil.copy(FILES / "alphabet.txt", files)
        for path in (root / "secret.txt", private / "secret.txt"):
            path.write_bytes(SECRET)
        for path in [*root.rglob("*.txt")]:
            path.chmod(0o644)
        monkeypatch.setenv("FLASK_FILES_DIR", str(files))
        yield files


SECRET = b"the secret outside the internal location\n"
TRAVERSALS = [
    "/protected/alphabet.txt/../alphabet.txt",
    "/protected/sub/../alphabet.txt",
    "/protected/sub/..%2falphabet.txt",
    "/protected/..%2fsecret.txt",
    "/protected/%2e%2e/secret.txt",
    "/protected/%2e%2e%2fsecret.txt",
    "/protected/sub/../../secret.txt",
    "/protected/sub/..%2f..%2fsecret.txt",
    "/protected/..%2ffiles-private/secret.txt",
    "/protected/%252e%252e/secret.txt",
    "/protected/..;/secret.txt",
    "/protected//etc/passwd",
    "/_protected/alphabet.txt",
    "/_protected/../secret.txt",
    "/_protected/..%2fsecret.txt",
    "/_protected%2f..%2fsecret.txt",
    "/_protected/%2e%2e/secret.txt",
    "/_protected../secret.txt",
    "/_protected/../files-private/secret.txt",
]


@pytest.mark.nginx
def test_x_accel_redirect_reaches_nothing_outside_the_internal_location(
    files_beside_a_secret,
):
    """Raw request lines (an HTTP client would remove the "../"), with the
    token, to the app through nginx and to the internal location directly:
    each answer is the authorised file or a 4xx, never the secret."""
    with gunicorn("snippets.downloads:app") as (app_url, _):
        block = ACCEL.format(files=files_beside_a_secret, upstream=app_url)
        with nginx(block) as url:
            answers = {}
            for target in TRAVERSALS:
                headers = [f"Authorization: {TOKEN['Authorization']}"]
                with open_request(
                    url, target, headers=[*headers, "Connection: close"]
                ) as sock:
                    answers[target] = read_to_close(sock)
    for target, raw in answers.items():
        status = int(raw.split(b" ", 2)[1])
        assert SECRET not in raw, target
        # 200 with the file, a redirect (Werkzeug merges "//"), or a 4xx.
        assert (status == 200 and raw.endswith(ALPHABET)) or 300 <= status < 500, (
            target,
            raw[:120],
        )
    print({target: raw.split(b"\r\n", 1)[0] for target, raw in answers.items()})
    served = [t for t, raw in answers.items() if raw.endswith(ALPHABET)]
    assert served == TRAVERSALS[:3]  # the names that normalise to alphabet.txt


# --- uploads ------------------------------------------------------------------------


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


PROXY = """
    client_max_body_size {limit};
    client_body_temp_path {body_temp};
    {buffering}
    location / {{
        proxy_pass {upstream};
        proxy_http_version 1.1;
    }}
"""


@pytest.mark.nginx
def test_nginx_buffers_the_request_body_by_default(upload_dir, body_temp):
    with gunicorn("snippets.uploads:app") as (app_url, _):
        block = PROXY.format(
            limit="10m", buffering="", upstream=app_url, body_temp=body_temp
        )
        with nginx(block) as url:
            started, status = half_then_rest(url, upload_dir, started_within=2)
    assert not started
    assert status == 201


@pytest.mark.nginx
def test_nginx_passes_the_body_on_with_request_buffering_off(upload_dir, body_temp):
    with gunicorn("snippets.uploads:app") as (app_url, _):
        block = PROXY.format(
            limit="10m",
            buffering="proxy_request_buffering off;",
            upstream=app_url,
            body_temp=body_temp,
        )
        with nginx(block) as url:
            started, status = half_then_rest(url, upload_dir, started_within=15)
    assert started
    assert status == 201


@pytest.mark.nginx
def test_nginx_refuses_bodies_over_1_mib_by_default(upload_dir):
    with gunicorn("snippets.uploads:app") as (app_url, _):
        block = ACCEL.format(files=FILES, upstream=app_url)
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
            assert wait_until(lambda: part_files(upload_dir), timeout=15)
        sock.close()
        assert wait_until(lambda: not part_files(upload_dir), timeout=15)
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
    (one gunicorn for all: `gunicorn 'tests.live.test_files_live:body_apps()'`)."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from snippets import broadcast, job_progress, lifecycle, token_stream

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


def test_200_mib_body_is_refused_and_worker_memory_stays_small():
    """POST /publish once read a body of any size before checking it: 200 MiB
    took the worker to a 623 MiB peak. Now every route that reads a body has
    MAX_CONTENT_LENGTH: a declared length over it is a 413 before the body is
    read; a chunked body is read only up to the limit (a 413; or, where the
    view reads the body whole, Werkzeug 3.1.9 stops at the limit without an
    error and the cut JSON or form is a 400). 200 MiB to each route, both
    ways, and the gunicorn worker's peak memory grows by under 16 MiB."""
    with gunicorn(
        "tests.live.test_files_live:body_apps()",
        worker_class="gthread",
        args=("--threads", "2"),
    ) as (url, proc):
        httpx.get(url + "/broadcast/warm-up")  # imports done, first request served
        worker = worker_of(proc)
        before = peak_rss(worker)
        statuses = {
            (line, chunked): send_big_body(
                url, line, kind, size=200 * MiB, chunked=chunked
            )
            for line, kind in BODY_ROUTES
            for chunked in (False, True)
        }
        growth = peak_rss(worker) - before
    print(f"{statuses}, peak RSS grew by {growth / MiB:.1f} MiB")
    assert {s for (_, chunked), s in statuses.items() if not chunked} == {413}
    assert {s for (_, chunked), s in statuses.items() if chunked} <= {400, 413}
    assert growth < 16 * MiB
