"""Request bodies: multipart uploads parsed by Werkzeug straight to disk,
and chunked bodies made readable on every server."""

# [recipe]
import io
import os
import tempfile
from pathlib import Path

from flask import Flask, Request, abort, g, request
from werkzeug.utils import secure_filename

DEFAULT = Path(tempfile.gettempdir()) / "uploads"
UPLOADS = Path(os.environ.get("UPLOAD_DIR", DEFAULT))


class ChunkedInput:
    """WSGI middleware: a chunked body (no Content-Length)
    is readable on servers that do not set
    wsgi.input_terminated (uWSGI, hypercorn, a2wsgi)."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        coding = environ.get("HTTP_TRANSFER_ENCODING", "")
        framed = "wsgi.input_terminated" in environ
        if "chunked" in coding.lower() and not framed:
            if "uwsgi.version" in environ:
                environ["wsgi.input"] = UwsgiChunks()
            environ["wsgi.input_terminated"] = True
        return self.wsgi_app(environ, start_response)


class UwsgiChunks(io.RawIOBase):
    """uWSGI's chunked body, read with its own API."""

    def __init__(self, timeout=30):
        import uwsgi  # only inside uWSGI

        self.chunked_read = uwsgi.chunked_read
        self.timeout, self.rest, self.done = timeout, b"", False

    def readable(self):
        return True

    def readinto(self, buffer):
        if not self.rest and not self.done:
            self.rest = self.chunked_read(self.timeout)
            self.done = not self.rest  # b"": the last chunk
        size = min(len(buffer), len(self.rest))
        buffer[:size] = self.rest[:size]
        self.rest = self.rest[size:]
        return size


class DiskRequest(Request):
    """Werkzeug's multipart parser writes each file part
    straight into UPLOADS, as a hidden .part file."""

    def _get_file_stream(self, *args, **kwargs):
        UPLOADS.mkdir(parents=True, exist_ok=True)
        part = tempfile.NamedTemporaryFile(  # noqa: SIM115
            dir=UPLOADS, prefix=".", suffix=".part", delete=False
        )
        g.setdefault("parts", []).append(part.name)
        return part


app = Flask(__name__)
app.request_class = DiskRequest
app.wsgi_app = ChunkedInput(app.wsgi_app)
app.config["MAX_CONTENT_LENGTH"] = 1024**3  # 1 GiB: 413


@app.get("/uploads")
def listing():
    def lines():
        yield "name\tbytes\n"
        for path in sorted(UPLOADS.glob("[!.]*")):
            yield f"{path.name}\t{path.stat().st_size}\n"

    return lines(), {"Content-Type": "text/plain"}


@app.post("/uploads")
def upload():
    files = request.files.getlist("file")
    names = [secure_filename(f.filename or "") for f in files]
    if not files or not all(names):
        abort(400, 'send files in a "file" part, with names')
    for name, file in zip(names, files, strict=True):
        file.stream.close()
        os.replace(file.stream.name, UPLOADS / name)
    return {"stored": names}, 201


@app.teardown_request
def remove_parts(error=None):
    # Refused, failed or cut short: no .part file stays.
    for name in g.pop("parts", []):
        Path(name).unlink(missing_ok=True)


# [recipe-end]


plain_app = app.wsgi_app.wsgi_app  # the app without ChunkedInput (tests)


# [size]
@app.post("/size")
def size():
    """Count the body as it streams (no Content-Length needed)."""
    received = 0
    while chunk := request.stream.read(64 * 1024):
        received += len(chunk)
    return {"bytes": received}


# [size-end]
