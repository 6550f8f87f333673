"""snippets/request_bodies.py in-process: a multipart upload parsed straight
to disk with bounded memory, failed uploads leave no file, the middleware,
and Werkzeug 3.1's form limits with their exact 413s."""

import io
import sys
import tracemalloc
from types import SimpleNamespace

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

from snippets import request_bodies
from snippets.request_bodies import app

MiB = 1024 * 1024
BOUNDARY = "b0undary"
TOO_LARGE = (
    b"<!doctype html>\n<html lang=en>\n<title>413 Request Entity Too Large</title>\n"
    b"<h1>Request Entity Too Large</h1>\n"
    b"<p>The data value transmitted exceeds the capacity limit.</p>\n"
)


@pytest.fixture(autouse=True)
def uploads(tmp_path, monkeypatch):
    monkeypatch.setattr(request_bodies, "UPLOADS", tmp_path)
    return tmp_path


class MultipartBody(io.RawIOBase):
    """A multipart body with one file part of ``size`` bytes, made as it is
    read: the test holds no copy of it (``cut``: end after that many bytes)."""

    def __init__(self, size, filename="big.bin", cut=None):
        self.head = (
            f"--{BOUNDARY}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.length = len(self.head) + size + len(self.tail)
        self.size, self.position = size, 0
        self.end = self.length if cut is None else cut

    def readable(self):
        return True

    def readinto(self, buffer):
        count = min(len(buffer), self.end - self.position)
        start, data = self.position, bytearray()
        head_end, file_end = len(self.head), len(self.head) + self.size
        while len(data) < count:
            at = start + len(data)
            if at < head_end:
                data += self.head[at : min(head_end, start + count)]
            elif at < file_end:
                data += b"z" * (min(file_end, start + count) - at)
            else:
                data += self.tail[at - file_end : at - file_end + count - len(data)]
        buffer[:count] = data
        self.position += count
        return count


def post_multipart(flask_app, body, length=True, **environ):
    """POST ``body`` to /uploads; ``length=False``: no Content-Length."""
    built = EnvironBuilder(path="/uploads", method="POST").get_environ()
    built.update(environ)
    built["wsgi.input"] = body
    built["CONTENT_TYPE"] = f"multipart/form-data; boundary={BOUNDARY}"
    built["CONTENT_LENGTH"] = str(body.length)
    if not length:
        del built["CONTENT_LENGTH"]
    chunks, status, _ = run_wsgi_app(flask_app, built, buffered=True)
    try:
        return int(status.split()[0]), b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()


def peak_while(action):
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


SIZE = 64 * MiB


def test_a_64_mib_upload_goes_to_disk_with_a_peak_under_1_mib(uploads):
    """Werkzeug's parser reads the body in 64 KiB pieces and writes each file
    part into the .part file the request class made: Python's allocations
    peak under 1 MiB for a 64 MiB file."""
    (status, body), peak = peak_while(lambda: post_multipart(app, MultipartBody(SIZE)))
    assert (status, body) == (201, b'{"stored":["big.bin"]}\n')
    assert (uploads / "big.bin").stat().st_size == SIZE
    assert [p.name for p in uploads.iterdir()] == ["big.bin"]
    print(f"multipart to disk: peak {peak / MiB:.2f} MiB for {SIZE // MiB} MiB")
    assert peak < 1 * MiB


def test_reading_the_same_body_whole_peaks_at_its_size():
    """The baseline that makes the bound above mean something: get_data()
    holds the whole 64 MiB body."""
    plain = Flask(__name__)
    plain.config["MAX_CONTENT_LENGTH"] = None

    @plain.post("/uploads")
    def whole():
        from flask import request

        return {"bytes": len(request.get_data())}

    (status, _), peak = peak_while(lambda: post_multipart(plain, MultipartBody(SIZE)))
    assert status == 200
    print(f"get_data(): peak {peak / MiB:.1f} MiB for {SIZE // MiB} MiB")
    assert peak > SIZE


def test_an_upload_over_max_content_length_gets_413_and_leaves_no_file(
    uploads, monkeypatch
):
    """No Content-Length (a chunked body, on a server that ends the stream):
    the 413 comes in the middle of the file part, and the .part file goes."""
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 4 * MiB)
    body = MultipartBody(8 * MiB)
    status, answer = post_multipart(
        app, body, length=False, **{"wsgi.input_terminated": True}
    )
    assert (status, answer) == (413, TOO_LARGE)
    assert body.position == 4 * MiB  # stopped at the limit, mid-file
    assert list(uploads.iterdir()) == []


def test_a_body_that_ends_early_gets_400_and_leaves_no_file(uploads):
    """The client sends 3 MiB of a declared 8 MiB and is gone: Werkzeug's
    stream raises ClientDisconnected (a 400), and the .part file goes."""
    body = MultipartBody(8 * MiB, cut=3 * MiB)
    status, _ = post_multipart(app, body)
    assert status == 400
    assert list(uploads.iterdir()) == []


def test_a_file_without_a_usable_name_gets_400_and_leaves_no_file(uploads):
    status, body = post_multipart(app, MultipartBody(MiB, filename=".."))
    assert status == 400
    assert b"send files in a &#34;file&#34; part, with names" in body
    assert list(uploads.iterdir()) == []


def test_the_middleware_sets_input_terminated_only_for_a_chunked_body():
    seen = []
    middleware = request_bodies.ChunkedInput(
        lambda environ, start_response: seen.append(dict(environ)) or []
    )
    middleware({"HTTP_TRANSFER_ENCODING": "chunked"}, None)
    middleware({"CONTENT_LENGTH": "5"}, None)
    middleware(
        {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": False}, None
    )
    assert seen[0]["wsgi.input_terminated"] is True
    assert "wsgi.input_terminated" not in seen[1]
    assert seen[2]["wsgi.input_terminated"] is False  # the server's own, kept


def test_under_uwsgi_the_middleware_reads_the_body_with_chunked_read(monkeypatch):
    """uWSGI's wsgi.input reads nothing of a chunked body: the middleware
    reads it with uwsgi.chunked_read(), chunk by chunk, to its empty last
    one (a stand-in for the module uWSGI gives its workers)."""
    chunks = [b"first ", b"second", b""]
    asked = []

    def chunked_read(timeout):
        asked.append(timeout)
        return chunks.pop(0)

    monkeypatch.setitem(
        sys.modules, "uwsgi", SimpleNamespace(chunked_read=chunked_read)
    )
    seen = []
    middleware = request_bodies.ChunkedInput(
        lambda environ, start_response: seen.append(environ) or []
    )
    middleware({"HTTP_TRANSFER_ENCODING": "chunked", "uwsgi.version": b"2.0"}, None)
    body = io.BufferedReader(seen[0]["wsgi.input"], buffer_size=4).read()
    assert body == b"first second"
    assert seen[0]["wsgi.input_terminated"] is True
    assert asked == [30, 30, 30]  # three reads, the last one empty


def test_the_listing_names_each_stored_upload_with_its_size(uploads):
    (uploads / "a.txt").write_bytes(b"12345")
    (uploads / ".half.part").write_bytes(b"x")  # a part in flight: not listed
    body = app.test_client().get("/uploads").get_data(as_text=True)
    assert body == "name\tbytes\na.txt\t5\n"


def multipart_fields(fields, files=1):
    """Fields and ``files`` small file parts, as the test client sends them."""
    data = dict(fields)
    data["file"] = [(io.BytesIO(b"x"), f"{n}.txt") for n in range(files)]
    return data


def test_form_limits_are_werkzeug_3_1s_defaults():
    assert app.config["MAX_FORM_MEMORY_SIZE"] == 500_000
    assert app.config["MAX_FORM_PARTS"] == 1_000


def test_a_text_field_over_500_000_bytes_is_a_413(uploads):
    client = app.test_client()
    over = client.post("/uploads", data=multipart_fields({"note": "n" * 500_001}))
    assert (over.status_code, over.get_data()) == (413, TOO_LARGE)
    at = client.post("/uploads", data=multipart_fields({"note": "n" * 500_000}))
    assert at.status_code == 201
    assert list(uploads.glob(".*")) == []


def test_more_than_1000_parts_is_a_413_and_leaves_no_file(uploads):
    """Files count as parts too: 1,000 files are stored, 1,001 are refused
    and the .part files already written go."""
    client = app.test_client()
    over = client.post("/uploads", data=multipart_fields({}, files=1_001))
    assert (over.status_code, over.get_data()) == (413, TOO_LARGE)
    assert list(uploads.iterdir()) == []
    at = client.post("/uploads", data=multipart_fields({}, files=1_000))
    assert at.status_code == 201
    assert len(list(uploads.iterdir())) == 1_000


def test_a_urlencoded_form_is_not_held_to_max_form_memory_size():
    """The limit applies to multipart text parts; a urlencoded body is read
    whole, bounded only by MAX_CONTENT_LENGTH."""
    plain = Flask(__name__)

    @plain.post("/")
    def form():
        from flask import request

        return {"note": len(request.form["note"])}

    response = plain.test_client().post("/", data={"note": "n" * 600_000})
    assert response.get_json() == {"note": 600_000}


def test_werkzeugs_default_spools_a_file_part_past_500_kib_to_a_temporary_file():
    """Without a request class of your own, Werkzeug 3.1.9 writes a file part
    into a SpooledTemporaryFile that moves to disk past 500 KiB, so memory
    stays bounded too; the file is in the system's temporary folder, and
    you copy it with save()."""
    plain = Flask(__name__)
    seen = {}

    @plain.post("/uploads")
    def upload():
        from flask import request

        stream = request.files["file"].stream
        seen["type"] = type(stream).__name__
        seen["on_disk"] = stream._rolled
        return {"ok": True}

    (status, _), peak = peak_while(lambda: post_multipart(plain, MultipartBody(SIZE)))
    assert status == 200
    assert seen == {"type": "SpooledTemporaryFile", "on_disk": True}
    print(f"default stream factory: peak {peak / MiB:.2f} MiB")
    assert peak < 1 * MiB
