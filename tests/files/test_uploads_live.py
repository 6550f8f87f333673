"""Downloads and uploads against real servers on 127.0.0.1: gunicorn, waitress,
Werkzeug's server and nginx. Proof for files/downloads and files/uploads."""

import hashlib
import http.client
import json
import shutil
import socket
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from snippets.uploads import app as uploads_app
from tests.servers import (
    ROOT,
    gunicorn,
    nginx,
    waitress,
)

pytestmark = pytest.mark.live


FILES = ROOT / "snippets" / "files"


MiB = 1024 * 1024


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


# nginx in front of the app, as on the downloads page.
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
