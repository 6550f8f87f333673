"""Uploads: read request.stream in chunks straight to disk, hashing as you go."""

# [recipe]
import hashlib
import os
import tempfile
from pathlib import Path

from flask import Flask, abort, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import secure_filename

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = 512 * 1024 * 1024
uploads = Path(tempfile.gettempdir()) / "fsp-uploads"
app.config["UPLOAD_DIR"] = str(uploads)
# FLASK_UPLOAD_DIR=/srv/uploads overrides it.
app.config.from_prefixed_env()
CHUNK_SIZE = 1024 * 1024  # memory use: about one chunk
MAX_NAME = 255  # bytes in a file name on Linux and macOS


@app.errorhandler(RequestEntityTooLarge)
def too_large(error):
    limit = app.config["MAX_CONTENT_LENGTH"]
    message = f"upload refused: the limit is {limit:,} bytes"
    return message + "\n", 413


@app.put("/uploads/<name>")
def upload(name):
    filename = secure_filename(name)
    if not filename:
        abort(400, "name must contain letters or digits")
    if len(filename) > MAX_NAME:
        abort(400, f"name must be at most {MAX_NAME} characters")
    framed = request.content_length is not None
    ended = request.environ.get("wsgi.input_terminated")
    if not framed and not ended:
        # No length, and a server that does not end the
        # stream: Werkzeug would hand you an empty stream.
        abort(411, "send a Content-Length or a chunked body")
    stream = request.stream  # a length over the limit: 413
    folder = Path(app.config["UPLOAD_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    # Write beside the target, then rename: no half files.
    fd, partial = tempfile.mkstemp(
        dir=folder,
        prefix=".upload-",
        suffix=".part",
    )
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK_SIZE):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
        # gunicorn ends the stream early, without an error,
        # when the client hangs up: compare with its length.
        if framed and size != request.content_length:
            got, sent = size, request.content_length
            abort(400, f"received {got:,} of {sent:,} bytes")
        os.replace(partial, folder / filename)
    except BaseException:
        os.unlink(partial)  # too large, gone, disk full
        raise
    answer = {"name": filename, "size": size}
    return {**answer, "sha256": digest.hexdigest()}, 201


# [recipe-end]
