"""In-process proof for files/uploads: limits, framing, and nothing half-written."""

import hashlib
import io
import json
import os
import tempfile
import tracemalloc

import pytest
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.test import EnvironBuilder, run_wsgi_app

import snippets.uploads as uploads
from snippets.uploads import app

MiB = 1024 * 1024


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path / "uploads"))
    return tmp_path / "uploads"


@pytest.fixture
def client(folder):
    return app.test_client()


def put_without_length(path, body, *, terminated):
    """A PUT with no Content-Length at all, as a server passes a chunked body
    (the test client always sets one, so build the environ by hand)."""
    environ = EnvironBuilder(path, method="PUT", input_stream=body).get_environ()
    del environ["CONTENT_LENGTH"]
    if terminated:
        environ["wsgi.input_terminated"] = True
    app_iter, status, _ = run_wsgi_app(app, environ, buffered=True)
    return int(status.split()[0]), b"".join(app_iter)


def test_upload_returns_size_and_sha256(client, folder):
    response = client.put("/uploads/hello.txt", data=b"hello")
    assert response.status_code == 201
    assert response.json == {
        "name": "hello.txt",
        "size": 5,
        "sha256": hashlib.sha256(b"hello").hexdigest(),
    }
    assert (folder / "hello.txt").read_bytes() == b"hello"


@pytest.mark.parametrize(
    ("name", "stored"),
    [("my report.pdf", "my_report.pdf"), ("..hidden", "hidden"), ("naïve", "naive")],
)
def test_stored_name_is_made_safe(client, folder, name, stored):
    response = client.put(f"/uploads/{name}", data=b"x")
    assert response.json["name"] == stored
    assert [p.name for p in folder.iterdir()] == [stored]


@pytest.mark.parametrize("name", ["..", "%2E%2E", "..."])
def test_name_without_letters_gets_400(client, folder, name):
    response = client.put(f"/uploads/{name}", data=b"x")
    assert response.status_code == 400
    assert b"name must contain letters or digits" in response.data
    assert not folder.exists()


def test_declared_length_over_the_limit_gets_413_before_reading(
    client, folder, monkeypatch
):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 10)
    response = client.put("/uploads/big.bin", data=b"x" * 11)
    assert response.status_code == 413
    assert response.data == b"upload refused: the limit is 10 bytes\n"
    assert not folder.exists()  # refused before the folder was even made


def test_chunked_body_over_the_limit_gets_413_and_leaves_nothing(
    client, folder, monkeypatch
):
    """No Content-Length: Werkzeug 3.1.9's get_input_stream wraps the stream
    in LimitedStream(is_max=True) when the server sets wsgi.input_terminated;
    reading past the limit raises RequestEntityTooLarge mid-upload."""
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", MiB)
    body = io.BytesIO(b"x" * (MiB + 1))
    status, data = put_without_length("/uploads/big.bin", body, terminated=True)
    assert status == 413
    assert data == b"upload refused: the limit is 1,048,576 bytes\n"
    assert body.tell() == MiB  # it read up to the limit, then refused
    assert list(folder.iterdir()) == []  # and its .part file is gone


def test_chunked_body_under_the_limit_is_stored(client, folder):
    body = io.BytesIO(b"y" * 1000)
    status, data = put_without_length("/uploads/small.bin", body, terminated=True)
    assert status == 201
    assert json.loads(data)["size"] == 1000


def test_no_length_and_no_terminated_stream_gets_411(client, folder):
    """Without either, Werkzeug returns an empty stream: 0 bytes, silently."""
    body = io.BytesIO(b"data")
    status, data = put_without_length("/uploads/x.bin", body, terminated=False)
    assert status == 411
    assert b"send a Content-Length or a chunked body" in data
    assert not folder.exists()


def test_client_gone_mid_upload_gets_400_and_leaves_nothing(client, folder):
    """Content-Length says 100, only 10 bytes come: ClientDisconnected (400)."""
    response = client.put(
        "/uploads/cut.bin",
        input_stream=io.BytesIO(b"z" * 10),
        environ_overrides={"CONTENT_LENGTH": "100"},
    )
    assert response.status_code == 400
    assert list(folder.iterdir()) == []


def test_disk_full_leaves_nothing(client, folder, monkeypatch):
    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(uploads.os, "replace", full)
    assert client.put("/uploads/full.bin", data=b"abc").status_code == 500
    assert list(folder.iterdir()) == []


def test_upload_replaces_the_file_in_one_step(client, folder):
    client.put("/uploads/doc.txt", data=b"version 1")
    client.put("/uploads/doc.txt", data=b"version 2")
    assert [p.name for p in folder.iterdir()] == ["doc.txt"]
    assert (folder / "doc.txt").read_bytes() == b"version 2"


def test_python_memory_stays_near_one_chunk(client, folder):
    """64 MiB through the view: Python allocations peak near one 1 MiB chunk
    (the 64 MiB input sits in a BytesIO made before tracing starts)."""
    body = io.BytesIO(b"m" * (64 * MiB))
    tracemalloc.start()
    try:
        response = client.put(
            "/uploads/m.bin",
            input_stream=body,
            environ_overrides={"CONTENT_LENGTH": str(64 * MiB)},
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.json["size"] == 64 * MiB
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_upload_cut_short_on_a_terminated_stream_is_not_stored(client, folder):
    """gunicorn sets wsgi.input_terminated and ends the stream early, without
    an error, when the client hangs up: the view compares what it received
    with Content-Length and stores nothing (the old target stays)."""
    client.put("/uploads/target.bin", data=b"old")
    response = client.put(
        "/uploads/target.bin",
        input_stream=io.BytesIO(b"z" * 10),
        environ_overrides={"CONTENT_LENGTH": "100", "wsgi.input_terminated": True},
    )
    assert response.status_code == 400
    assert b"received 10 of 100 bytes" in response.data
    assert [p.name for p in folder.iterdir()] == ["target.bin"]
    assert (folder / "target.bin").read_bytes() == b"old"


@pytest.mark.parametrize("length", [255, 256, 5000])
def test_name_of_256_or_more_characters_gets_400(client, folder, length):
    """Linux refuses a name over 255 bytes (ENAMETOOLONG): a 400, not a 500."""
    response = client.put("/uploads/" + "n" * length, data=b"x")
    if length <= 255:
        assert response.status_code == 201
    else:
        assert response.status_code == 400
        assert b"name must be at most 255 characters" in response.data
        assert not folder.exists() or list(folder.iterdir()) == []


def test_chunked_body_read_whole_stops_at_the_limit_without_an_error():
    """Werkzeug 3.1.9: with wsgi.input_terminated and no Content-Length,
    get_data() returns the first MAX_CONTENT_LENGTH bytes and raises nothing
    (a JSON view then sees cut JSON: a 400); reading on past the limit is
    what raises the 413."""
    from flask import Flask, request

    demo = Flask(__name__)
    demo.config["MAX_CONTENT_LENGTH"] = 16 * 1024
    environ = EnvironBuilder(
        "/", method="POST", input_stream=io.BytesIO(b"[" * (20 * 1024))
    ).get_environ()
    del environ["CONTENT_LENGTH"]
    environ["wsgi.input_terminated"] = True
    with demo.request_context(environ):
        assert len(request.get_data()) == 16 * 1024
    environ["wsgi.input"] = io.BytesIO(b"[" * (20 * 1024))
    with demo.request_context(environ), pytest.raises(RequestEntityTooLarge):
        while request.stream.read(4096):
            pass


# --- multipart forms: snippets/uploads_forms.py (Werkzeug 3.1.9) ---------------

TOO_LARGE = (
    b"<!doctype html>\n<html lang=en>\n<title>413 Request Entity Too Large</title>\n"
    b"<h1>Request Entity Too Large</h1>\n"
    b"<p>The data value transmitted exceeds the capacity limit.</p>\n"
)


@pytest.fixture
def forms(tmp_path, monkeypatch):
    from snippets.uploads_forms import app as forms_app

    monkeypatch.setitem(forms_app.config, "UPLOAD_DIR", str(tmp_path / "forms"))
    forms_app.upload_dir = tmp_path / "forms"
    return forms_app


@pytest.mark.parametrize("kind", ["application/x-www-form-urlencoded", "multipart"])
def test_request_stream_after_request_form_is_empty(forms, kind):
    content_type = "multipart/form-data" if kind == "multipart" else kind
    response = forms.test_client().post(
        "/form-then-stream", data={"name": "Ada"}, content_type=content_type
    )
    assert response.json == {"fields": 1, "stream_bytes": 0}


def test_1001_multipart_parts_are_a_413_and_1000_are_not(forms):
    """Flask 3.1's MAX_FORM_PARTS: 1,000 by default."""
    client = forms.test_client()
    assert forms.config["MAX_FORM_PARTS"] == 1000

    def post(parts):
        data = {f"f{i}": "1" for i in range(parts)}
        return client.post(
            "/form-then-stream", data=data, content_type="multipart/form-data"
        )

    assert post(1000).json == {"fields": 1000, "stream_bytes": 0}
    refused = post(1001)
    assert (refused.status_code, refused.data) == (413, TOO_LARGE)


def test_a_multipart_field_over_500_000_bytes_is_a_413_and_urlencoded_is_not(forms):
    """Flask 3.1's MAX_FORM_MEMORY_SIZE (500,000 bytes) limits a multipart
    field that is not a file; an urlencoded body only meets
    MAX_CONTENT_LENGTH."""
    client = forms.test_client()
    assert forms.config["MAX_FORM_MEMORY_SIZE"] == 500_000

    def post(size, content_type):
        data = {"note": "x" * size}
        return client.post("/form-then-stream", data=data, content_type=content_type)

    assert post(500_000, "multipart/form-data").status_code == 200
    refused = post(500_001, "multipart/form-data")
    assert (refused.status_code, refused.data) == (413, TOO_LARGE)
    urlencoded = post(500_001, "application/x-www-form-urlencoded")
    assert urlencoded.json == {"fields": 1, "stream_bytes": 0}


def multipart_file(size, boundary="b0undary"):
    """A multipart body with one file field of ``size`` bytes, in a
    temporary file (so the test's own memory is not what is measured)."""
    body = tempfile.TemporaryFile()  # noqa: SIM115 the caller closes it
    body.write(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file";'
        ' filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
    )
    for _ in range(size // MiB):
        body.write(b"z" * MiB)
    body.write(f"\r\n--{boundary}--\r\n".encode())
    length = body.tell()
    body.seek(0)
    return body, length, f"multipart/form-data; boundary={boundary}"


def test_multipart_upload_keeps_python_memory_under_2_mib(forms):
    """32 MiB through Werkzeug's form parser and file.save(): Python's
    allocations peak under 2 MiB (the parser spools a file over 500 KiB to a
    temporary file)."""
    body, length, content_type = multipart_file(32 * MiB)
    with body:
        tracemalloc.start()
        try:
            response = forms.test_client().post(
                "/form-upload",
                input_stream=body,
                content_type=content_type,
                content_length=length,
            )
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    print(f"\n32 MiB multipart upload: Python peak {peak / MiB:.2f} MiB")
    assert response.status_code == 201
    assert response.json == {"name": "big.bin", "size": 32 * MiB}
    assert (forms.upload_dir / "big.bin").stat().st_size == 32 * MiB
    assert peak < 2 * MiB
    assert [p.name for p in forms.upload_dir.iterdir()] == ["big.bin"]


def test_form_upload_refuses_a_missing_or_nameless_file(forms):
    client = forms.test_client()
    missing = client.post("/form-upload", data={"name": "x"})
    assert missing.status_code == 400
    assert b"send a file field named file" in missing.data
    nameless = client.post("/form-upload", data={"file": (io.BytesIO(b"x"), "..")})
    assert nameless.status_code == 400
    assert b"the file name must contain letters or digits" in nameless.data


def test_form_upload_that_fails_leaves_no_part_file(forms, monkeypatch):
    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    client = forms.test_client()
    data = {"file": (io.BytesIO(b"x"), "a.txt")}
    assert client.post("/form-upload", data=data).status_code == 500
    assert list(forms.upload_dir.iterdir()) == []
