"""Downloads and uploads against real servers on 127.0.0.1: gunicorn, waitress,
Werkzeug's server and nginx. Proof for files/downloads and files/uploads."""

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import httpx
import psutil
import pytest

from snippets.downloads_reports import app as reports_app
from tests.servers import (
    ROOT,
    gunicorn,
    nginx_http,
    open_request,
    read_to_close,
    werkzeug_server,
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


@pytest.mark.parametrize("server", ["werkzeug", "gunicorn"])
def test_call_on_close_does_not_run_after_send_file_live(
    server, report_dir, live_server
):
    with contextlib.ExitStack() as stack:
        if server == "werkzeug":
            # Not threaded: requests are served one after the other.
            url = live_server(reports_app, threaded=False)
        else:
            url, _ = stack.enter_context(gunicorn("snippets.downloads_reports:app"))
        with httpx.Client(base_url=url, timeout=10) as client:
            got = client.get("/leaky-report.csv?rows=3")
            head = client.head("/leaky-report.csv?rows=3")
            client.get("/report.csv?rows=1")  # both requests above are over
    assert got.content == b"1,1\r\n2,4\r\n3,9\r\n"
    # GET: the callback never ran, the report is still there; HEAD: it ran.
    assert [p.name for p in report_dir.iterdir()] == [filename(got)]
    assert filename(head) != filename(got)


def filename(response):
    return response.headers["content-disposition"].split("filename=")[1]


def test_open_unlink_send_under_gunicorn(report_dir):
    with gunicorn("snippets.downloads_reports:app") as (url, _):
        response = httpx.get(url + "/report.csv?rows=100000", timeout=30)
        httpx.get(url + "/report.csv?rows=1")
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.content.endswith(b"100000,10000000000\r\n")
    assert list(report_dir.iterdir()) == []


CONF = ROOT / "docs" / "files" / "_conf" / "downloads.nginx.conf"
MIME_TYPES = "include /etc/nginx/mime.types;"  # Debian's nginx.conf has it too


def accel_conf(files, upstream, text=None):
    """The page's nginx config as it is, pointed at this test's folder and
    app: only the folder and the upstream address change."""
    text = CONF.read_text() if text is None else text
    assert text.count("/srv/app/files/") == 1
    assert text.count("http://127.0.0.1:8000") == 1
    return text.replace("/srv/app/files/", f"{files}/").replace(
        "http://127.0.0.1:8000", upstream
    )


@pytest.mark.nginx
def test_nginx_serves_the_file_the_app_authorised(files_dir):
    with gunicorn("snippets.downloads:app") as (app_url, _):
        # What the app itself sends: a header and an empty body.
        direct = httpx.get(app_url + "/protected/alphabet.txt", headers=TOKEN)
        with nginx_http(MIME_TYPES, accel_conf(files_dir, app_url)) as url:
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
        conf = accel_conf(files_beside_a_secret, app_url)
        with nginx_http(MIME_TYPES, conf) as url:
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


@pytest.fixture
def links_beside_a_secret(monkeypatch):
    """<tmp>/files/ holds alphabet.txt, a link out to <tmp>/secret.txt, a
    link to a folder outside, a link inside, and a FIFO; world-readable, for
    nginx's unprivileged worker."""
    with tempfile.TemporaryDirectory(prefix="fsp-links-") as tmp:
        root = Path(tmp)
        files = root / "files"
        files.mkdir()
        for folder in (root, files):
            folder.chmod(0o755)
        shutil.copy(FILES / "alphabet.txt", files)
        (root / "secret.txt").write_bytes(SECRET)
        (files / "out.txt").symlink_to(root / "secret.txt")
        (files / "outside").symlink_to(root, target_is_directory=True)
        (files / "inside.txt").symlink_to("alphabet.txt")
        os.mkfifo(files / "fifo", 0o644)
        for path in (root / "secret.txt", files / "alphabet.txt"):
            path.chmod(0o644)
        monkeypatch.setenv("FLASK_FILES_DIR", str(files))
        yield files


def accel_everything(environ, start_response):
    """An upstream that authorises every name, as if a link had appeared
    between the app's check and nginx opening the file."""
    name = environ["PATH_INFO"].removeprefix("/protected/")
    start_response("200 OK", [("X-Accel-Redirect", "/_protected/" + name)])
    return [b""]


LINKED = ["alphabet.txt", "inside.txt", "out.txt", "outside/secret.txt", "fifo"]


def through_nginx(conf):
    """(status, body) for each of LINKED, through nginx with ``conf``."""
    with nginx_http(MIME_TYPES, conf) as url, httpx.Client(timeout=10) as client:
        return {
            name: (r.status_code, r.content)
            for name in LINKED
            if (r := client.get(f"{url}/protected/{name}"))
        }


@pytest.mark.nginx
def test_nginx_disable_symlinks_refuses_a_link_the_app_let_through(
    links_beside_a_secret,
):
    """The page's config: a link is a 403 from nginx itself (a 404 for a
    link to a folder), even when the app said yes; without its
    disable_symlinks line nginx follows the link out of the folder and sends
    the secret. A FIFO is never waited on."""
    with werkzeug_server(accel_everything) as upstream:
        shown = through_nginx(accel_conf(links_beside_a_secret, upstream))
        text = CONF.read_text()
        line = next(x for x in text.splitlines() if "disable_symlinks on;" in x)
        without = through_nginx(
            accel_conf(links_beside_a_secret, upstream, text.replace(line, ""))
        )
    print({"shown": {k: v[0] for k, v in shown.items()}})
    print({"without disable_symlinks": {k: v[0] for k, v in without.items()}})
    assert shown["alphabet.txt"] == (200, ALPHABET)
    assert shown["inside.txt"][0] == shown["out.txt"][0] == 403
    assert shown["outside/secret.txt"][0] == 404  # a link to a folder
    assert without["out.txt"] == (200, SECRET)
    assert without["outside/secret.txt"] == (200, SECRET)
    assert without["inside.txt"] == (200, ALPHABET)
    # A FIFO: an answer within the client's timeout, and not a 200.
    assert shown["fifo"][0] != 200 and without["fifo"][0] != 200


@pytest.mark.nginx
def test_app_and_nginx_refuse_links_out_of_the_folder(links_beside_a_secret):
    """The snippet behind the page's config: a link out is the app's 404,
    a link inside is authorised under its target's name, and a FIFO is the
    app's 404 with the worker free for the next request."""
    with contextlib.ExitStack() as stack:
        app_url, _ = stack.enter_context(gunicorn("snippets.downloads:app"))
        url = stack.enter_context(
            nginx_http(MIME_TYPES, accel_conf(links_beside_a_secret, app_url))
        )
        client = stack.enter_context(httpx.Client(base_url=url, timeout=10))
        got = {name: client.get(f"/protected/{name}", headers=TOKEN) for name in LINKED}
        after = client.get("/protected/alphabet.txt", headers=TOKEN)
    assert got["alphabet.txt"].content == ALPHABET
    assert got["inside.txt"].content == ALPHABET
    for name in ("out.txt", "outside/secret.txt", "fifo"):
        assert got[name].status_code == 404, name
        assert SECRET not in got[name].content
    assert after.content == ALPHABET
