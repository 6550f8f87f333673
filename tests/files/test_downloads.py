"""In-process proof for files/downloads: send_file against a hand-made stream."""

import io
import os
import re
import tempfile
import threading
from pathlib import Path

import pytest
from flask import Flask, send_file
from gunicorn.http.wsgi import FileWrapper as GunicornFileWrapper
from werkzeug.exceptions import NotFound
from werkzeug.test import EnvironBuilder
from werkzeug.wsgi import FileWrapper

import snippets.downloads as downloads
import snippets.downloads_reports as downloads_reports
from snippets.downloads import app
from snippets.downloads_reports import app as reports_app

ALPHABET = b"abcdefghijklmnopqrstuvwxyz\n"


@pytest.fixture
def client():
    return app.test_client()


@pytest.fixture
def reports_client():
    return reports_app.test_client()


def wsgi_body(wsgi_app, path, **kwargs):
    """Call the app as a server would; return the body iterable it gets back."""
    environ = EnvironBuilder(path, **kwargs).get_environ()
    return wsgi_app(environ, lambda status, headers: None)


def reported_path(response):
    name = re.search(r"filename=(\S+)", response.headers["Content-Disposition"])[1]
    return Path(tempfile.gettempdir()) / name


@pytest.fixture
def made_reports(monkeypatch):
    """Record the path of every report the snippet writes (and remove leftovers)."""
    made = []
    original = downloads_reports.make_report

    def recording(rows):
        made.append(Path(original(rows)))
        return str(made[-1])

    monkeypatch.setattr(downloads_reports, "make_report", recording)
    yield made
    for path in made:
        path.unlink(missing_ok=True)


# --- send_from_directory --------------------------------------------------------


def test_send_file_sets_length_etag_and_last_modified(client):
    response = client.get("/files/alphabet.txt")
    assert response.data == ALPHABET
    assert response.content_length == len(ALPHABET)
    assert response.headers["ETag"].startswith('"')
    assert response.last_modified is not None
    assert response.headers["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize("header", ["If-None-Match", "If-Modified-Since"])
def test_conditional_request_gets_304_without_body(client, header):
    first = client.get("/files/alphabet.txt")
    source = "ETag" if header == "If-None-Match" else "Last-Modified"
    response = client.get(
        "/files/alphabet.txt", headers={header: first.headers[source]}
    )
    assert response.status_code == 304
    assert response.data == b""


def test_range_gets_206_with_content_range(client):
    response = client.get("/files/alphabet.txt", headers={"Range": "bytes=0-4"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == "bytes 0-4/27"
    assert response.content_length == 5
    assert response.data == b"abcde"


@pytest.mark.parametrize("value", ["bytes=100-", "bytes=abc", "bytes=0-1,3-4"])
def test_unsatisfiable_or_bad_range_gets_416(client, value):
    response = client.get("/files/alphabet.txt", headers={"Range": value})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */27"


def test_if_range_matching_gives_206_stale_gives_full_200(client):
    etag = client.get("/files/alphabet.txt").headers["ETag"]
    headers = {"Range": "bytes=2-5", "If-Range": etag}
    assert client.get("/files/alphabet.txt", headers=headers).data == b"cdef"
    headers["If-Range"] = '"an-older-version"'
    response = client.get("/files/alphabet.txt", headers=headers)
    assert response.status_code == 200
    assert response.data == ALPHABET


@pytest.mark.parametrize(
    "path",
    [
        "/files/../downloads.py",
        "/files/%2e%2e/downloads.py",
        "/files/%2E%2E/%2E%2E/pyproject.toml",
        "/files/..%2fdownloads.py",
        "/files//etc/passwd",
        "/files/%2Fetc%2Fpasswd",
        "/files/missing.txt",
        "/chunks/../downloads.py",
        "/chunks//etc/passwd",
        "/protected/../downloads.py",
    ],
)
def test_traversal_and_absolute_paths_get_404(client, path):
    headers = {"Authorization": "Bearer let-me-in"}
    response = client.get(path, headers=headers, follow_redirects=True)
    assert response.status_code == 404


def test_absolute_name_is_refused_even_without_the_slash_merge():
    """Werkzeug merges '//' (308) before the view runs; called directly, the
    view still refuses an absolute name."""
    with app.test_request_context(), pytest.raises(NotFound):
        downloads.download("/etc/passwd")


# --- what the server receives ---------------------------------------------------


def test_body_is_the_servers_file_wrapper():
    """Without wsgi.file_wrapper, Werkzeug's own; with gunicorn's, gunicorn's,
    which is what makes its worker call socket.sendfile()."""
    body = wsgi_body(app, "/files/alphabet.txt")
    assert type(body) is FileWrapper
    body.close()
    body = wsgi_body(
        app,
        "/files/alphabet.txt",
        environ_overrides={"wsgi.file_wrapper": GunicornFileWrapper},
    )
    assert type(body) is GunicornFileWrapper
    body.close()


def test_range_body_is_not_a_file_wrapper():
    """A 206 body is Werkzeug's _RangeWrapper: a server cannot sendfile it."""
    body = wsgi_body(
        app,
        "/files/alphabet.txt",
        headers={"Range": "bytes=0-1"},
        environ_overrides={"wsgi.file_wrapper": GunicornFileWrapper},
    )
    assert not isinstance(body, GunicornFileWrapper)
    assert b"".join(body) == b"ab"
    body.close()


# --- call_on_close and temporary files ------------------------------------------


def test_call_on_close_does_not_run_after_send_file(reports_client):
    response = reports_client.get("/leaky-report.csv?rows=3")
    assert response.data == b"1,1\r\n2,4\r\n3,9\r\n"
    response.close()
    path = reported_path(response)
    try:
        assert path.exists()  # the unlink registered with call_on_close never ran
    finally:
        path.unlink()


def test_call_on_close_does_not_run_after_a_range_response(reports_client):
    response = reports_client.get(
        "/leaky-report.csv?rows=3", headers={"Range": "bytes=0-2"}
    )
    assert response.status_code == 206
    response.close()
    path = reported_path(response)
    try:
        assert path.exists()
    finally:
        path.unlink()


def test_call_on_close_runs_for_head(reports_client):
    """HEAD (and 304, 204, 1xx) bodies are empty: Werkzeug wraps the empty
    body in a ClosingIterator, which does call the callbacks."""
    response = reports_client.head("/leaky-report.csv?rows=3")
    response.close()
    assert not reported_path(response).exists()


def test_call_on_close_runs_for_304(reports_client):
    response = reports_client.get(
        "/leaky-report.csv?rows=3",
        headers={"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
    )
    assert response.status_code == 304
    response.close()
    assert not reported_path(response).exists()


def test_open_unlink_send_leaves_nothing_and_sends_everything(
    reports_client, made_reports
):
    response = reports_client.get("/report.csv?rows=1000")
    # The view has returned; the body is not read yet, and the name is gone.
    assert not made_reports[0].exists()
    body = response.get_data()
    assert len(body) == response.content_length
    assert body.endswith(b"1000,1000000\r\n")
    response.close()


def test_open_unlink_send_closes_the_file(made_reports):
    body = wsgi_body(reports_app, "/report.csv?rows=3")
    assert b"".join(body) == b"1,1\r\n2,4\r\n3,9\r\n"
    body.close()  # what every WSGI server does when it is done
    assert body.file.closed


def test_failed_report_leaves_no_file(reports_client, monkeypatch):
    made = []

    def exploding_writer(out):
        made.append(out.name)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(downloads_reports.csv, "writer", exploding_writer)
    with pytest.raises(OSError):
        downloads_reports.make_report(3)
    assert made and not any(os.path.exists(name) for name in made)


@pytest.mark.parametrize("rows", ["0", "-1", "ten", "100001", ""])
def test_bad_rows_get_400(reports_client, rows):
    response = reports_client.get(f"/report.csv?rows={rows}")
    assert response.status_code == 400
    assert b"rows must be a whole number" in response.data


# --- what a hand-written generator loses ----------------------------------------


def test_generator_download_has_no_content_length(client):
    response = client.get("/chunks/alphabet.txt")
    assert response.is_streamed
    assert response.content_length is None
    assert response.data == ALPHABET


def test_generator_download_ignores_range(client):
    response = client.get("/chunks/alphabet.txt", headers={"Range": "bytes=0-4"})
    assert response.status_code == 200
    assert response.data == ALPHABET


def test_generator_download_has_no_validators_and_no_304(client):
    etag = client.get("/files/alphabet.txt").headers["ETag"]
    response = client.get("/chunks/alphabet.txt", headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert "ETag" not in response.headers
    assert "Last-Modified" not in response.headers


def test_generator_download_is_not_a_file_wrapper():
    body = wsgi_body(
        app,
        "/chunks/alphabet.txt",
        environ_overrides={"wsgi.file_wrapper": GunicornFileWrapper},
    )
    assert not isinstance(body, GunicornFileWrapper)
    assert b"".join(body) == ALPHABET
    body.close()


# --- X-Accel-Redirect --------------------------------------------------------------


def test_accel_redirect_needs_a_token(client):
    response = client.get("/protected/alphabet.txt")
    assert response.status_code == 403
    assert b"this file needs a valid token" in response.data


def test_accel_redirect_sends_no_body_only_the_header(client):
    response = client.get(
        "/protected/alphabet.txt", headers={"Authorization": "Bearer let-me-in"}
    )
    assert response.status_code == 200
    assert response.headers["X-Accel-Redirect"] == "/_protected/alphabet.txt"
    assert response.data == b""
    assert "Content-Type" not in response.headers


# --- no request leaves a temporary file behind --------------------------------------


@pytest.mark.parametrize("path", ["/leaky-report.csv?rows=3", "/report.csv?rows=3"])
@pytest.mark.parametrize("value", ["bytes=100-", "bytes=abc", "bytes=0-1,3-4"])
def test_range_416_leaves_no_temporary_file(reports_client, made_reports, path, value):
    """send_file raises the 416 before call_on_close is registered: the leaky
    route now removes its report when send_file raises."""
    response = reports_client.get(path, headers={"Range": value})
    response.close()
    assert response.status_code in {200, 416}
    assert made_reports and not any(p.exists() for p in made_reports)


def test_report_from_an_open_file_does_not_claim_ranges(reports_client, made_reports):
    """send_file(open file) knows no size and no validators: with the default
    conditional=True it said Accept-Ranges: bytes and then sent the whole
    body with a 200 to a Range request."""
    response = reports_client.get("/report.csv?rows=3", headers={"Range": "bytes=0-2"})
    assert response.status_code == 200
    assert response.data == b"1,1\r\n2,4\r\n3,9\r\n"
    assert "Accept-Ranges" not in response.headers
    assert "ETag" not in response.headers
    assert "Last-Modified" not in response.headers


def test_send_file_of_an_open_file_has_no_length_validators_or_ranges():
    """What index.rst says of send_file with an open file object: no length
    unless you set it, no ETag or Last-Modified, and with conditional=True a
    Range request gets a 200 with the whole body under Accept-Ranges: bytes.
    A BytesIO has a length and answers ranges, but has no validators either,
    so a conditional request gets the whole body again."""
    demo = Flask(__name__)
    path = Path(app.config["FILES_DIR"])

    @demo.get("/open")
    def opened():
        return send_file((path / "alphabet.txt").open("rb"), mimetype="text/plain")

    @demo.get("/bytes")
    def in_memory():
        return send_file(io.BytesIO(ALPHABET), mimetype="text/plain")

    client = demo.test_client()
    response = client.get("/open", headers={"Range": "bytes=0-4"})
    assert response.status_code == 200
    assert response.data == ALPHABET
    assert response.headers["Accept-Ranges"] == "bytes"
    assert "Content-Length" not in response.headers
    assert "ETag" not in response.headers and "Last-Modified" not in response.headers
    ranged = client.get("/bytes", headers={"Range": "bytes=0-4"})
    assert (ranged.status_code, ranged.data) == (206, b"abcde")
    whole = client.get("/bytes", headers={"If-None-Match": "*"})
    assert (whole.status_code, whole.data) == (200, ALPHABET)
    assert whole.content_length == len(ALPHABET)
    assert "ETag" not in whole.headers and "Last-Modified" not in whole.headers


@pytest.mark.parametrize(
    "name",
    [
        "alphabet.txt/../alphabet.txt",
        "./alphabet.txt",
        "x/../alphabet.txt",
        "a/./../alphabet.txt",
    ],
)
def test_accel_redirect_names_the_normalised_path(client, name):
    """The name went into X-Accel-Redirect as it came: with "../" in it."""
    response = client.get(
        "/protected/" + name, headers={"Authorization": "Bearer let-me-in"}
    )
    assert response.status_code == 200
    assert response.headers["X-Accel-Redirect"] == "/_protected/alphabet.txt"


# --- links and special files in the folder (issue 22, item 6) -----------------

SECRET = b"the secret beside the folder\n"
TOKEN = {"Authorization": "Bearer let-me-in"}


@pytest.fixture
def linked_folder(tmp_path, monkeypatch):
    """files/ holds alphabet.txt, a link out to ../secret.txt, a link to a
    folder outside, a link to alphabet.txt, a loop of links and a FIFO."""
    files = tmp_path / "files"
    files.mkdir()
    (files / "alphabet.txt").write_bytes(ALPHABET)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (files / "out.txt").symlink_to(tmp_path / "secret.txt")
    (files / "outside").symlink_to(tmp_path, target_is_directory=True)
    (files / "inside.txt").symlink_to("alphabet.txt")
    (files / "loop-a").symlink_to(files / "loop-b")
    (files / "loop-b").symlink_to(files / "loop-a")
    os.mkfifo(files / "fifo")
    monkeypatch.setitem(app.config, "FILES_DIR", str(files))
    return files


@pytest.mark.parametrize("route", ["/files/", "/chunks/", "/protected/"])
@pytest.mark.parametrize("name", ["out.txt", "outside/secret.txt", "loop-a"])
def test_a_link_out_of_the_folder_is_a_404(client, linked_folder, route, name):
    """Before the real-path check, /files/ and /chunks/ sent the secret and
    /protected/ told nginx to send it."""
    response = client.get(route + name, headers=TOKEN)
    assert response.status_code == 404
    assert SECRET not in response.data
    assert "X-Accel-Redirect" not in response.headers


def test_a_link_inside_the_folder_is_served_as_its_target(client, linked_folder):
    assert client.get("/files/inside.txt").data == ALPHABET
    assert client.get("/chunks/inside.txt").data == ALPHABET
    accel = client.get("/protected/inside.txt", headers=TOKEN)
    assert accel.headers["X-Accel-Redirect"] == "/_protected/alphabet.txt"


def test_a_nul_in_the_name_is_a_404(client, linked_folder):
    assert client.get("/files/alpha%00bet.txt").status_code == 404


@pytest.mark.parametrize("route", ["/files/", "/chunks/", "/protected/"])
def test_a_fifo_in_the_folder_is_a_404_without_opening_it(client, linked_folder, route):
    """Opening a FIFO for reading waits for a writer: a view that opened it
    would hold its worker until one came. The view answers first; if it ever
    opens the FIFO, this test writes to it so that no thread stays blocked."""
    answered = {}
    thread = threading.Thread(
        target=lambda: answered.update(r=client.get(route + "fifo", headers=TOKEN))
    )
    thread.start()
    thread.join(timeout=10)
    if thread.is_alive():  # blocked in open(): release it, then fail
        with open(linked_folder / "fifo", "wb"):
            pass
        thread.join()
        pytest.fail(f"{route}fifo opened the FIFO and waited for a writer")
    assert answered["r"].status_code == 404


@pytest.mark.parametrize(
    "path", ["/files/alphabet.txt", "/chunks/alphabet.txt", "/protected/alphabet.txt"]
)
def test_head_on_every_route_is_answered_like_get(client, path):
    get, head = client.get(path, headers=TOKEN), client.head(path, headers=TOKEN)
    assert (head.status_code, head.data) == (get.status_code, b"")
    assert head.headers.get("Content-Length") == get.headers.get("Content-Length")
    assert head.mimetype == get.mimetype
    get.close()


@pytest.mark.parametrize("path", ["/report.csv?rows=3", "/leaky-report.csv?rows=3"])
def test_head_on_every_report_route_is_answered_like_get(
    reports_client, made_reports, path
):
    get, head = reports_client.get(path), reports_client.head(path)
    assert (head.status_code, head.data) == (200, b"")
    assert head.headers["Content-Length"] == get.headers["Content-Length"] == "15"
    assert head.mimetype == get.mimetype == "text/csv"
    get.close()
