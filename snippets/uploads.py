"""Uploads: read request.stream in chunks straight to disk, hashing as you go."""

import hashlib
import os
import tempfile
from pathlib import Path

from flask import Flask, abort, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = 512 * 1024 * 1024  # 413 above this
app.config["UPLOAD_DIR"] = str(Path(tempfile.gettempdir()) / "fsp-uploads")
# FLASK_UPLOAD_DIR=/srv/uploads FLASK_MAX_CONTENT_LENGTH=1048576 override them.
app.config.from_prefixed_env()

CHUNK_SIZE = 1024 * 1024  # memory use stays near one chunk, whatever the size
MAX_NAME = 255  # bytes in a file name on Linux and macOS; secure_filename is ASCII


# [limit]
@app.errorhandler(RequestEntityTooLarge)
def too_large(error):
    limit = app.config["MAX_CONTENT_LENGTH"]
    return f"upload refused: the limit is {limit:,} bytes\n", 413


# [limit-end]


# [upload]
@app.put("/uploads/<name>")
def upload(name):
    filename = secure_filename(name)
    if not filename:
        abort(400, "name must contain letters or digits")
    if len(filename) > MAX_NAME:
        abort(400, f"name must be at most {MAX_NAME} characters")
    framed = request.content_length is not None
    if not framed and not request.environ.get("wsgi.input_terminated"):
        # No Content-Length and a server that does not end the stream itself:
        # Werkzeug would hand you an empty stream, and you would store 0 bytes.
        abort(411, "send a Content-Length or a chunked body")
    stream = request.stream  # a declared Content-Length over the limit: 413 now
    folder = Path(app.config["UPLOAD_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    # Write beside the target, then rename: readers never see half a file.
    fd, partial = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK_SIZE):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        # gunicorn ends the stream early, without an error, when the client
        # hangs up: compare with what the client said it would send.
        if framed and size != request.content_length:
            abort(400, f"received {size:,} of {request.content_length:,} bytes")
        os.replace(partial, folder / filename)
    except BaseException:
        os.unlink(partial)  # too large, client gone, disk full: keep nothing
        raise
    return {"name": filename, "size": size, "sha256": digest.hexdigest()}, 201


# [upload-end]
