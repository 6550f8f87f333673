"""Multipart forms: request.stream after request.form, Werkzeug's form
limits, and a file field saved to disk with Werkzeug's own parser."""

import os
import tempfile
from pathlib import Path

from flask import Flask, abort, request
from werkzeug.utils import secure_filename

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = 512 * 1024 * 1024  # the whole body
uploads = Path(tempfile.gettempdir()) / "fsp-form-uploads"
app.config["UPLOAD_DIR"] = str(uploads)
app.config.from_prefixed_env()  # FLASK_MAX_FORM_PARTS=..., FLASK_UPLOAD_DIR=...


# [form-then-stream]
@app.post("/form-then-stream")
def form_then_stream():
    fields = len(request.form)  # parses the whole body
    rest = request.stream.read()  # what is left of it: nothing
    return {"fields": fields, "stream_bytes": len(rest)}


# [form-then-stream-end]


# [form-upload]
@app.post("/form-upload")
def form_upload():
    # Werkzeug's parser has read the body in blocks; a file over 500 KiB
    # is in a temporary file, not in memory.
    file = request.files.get("file") or abort(400, "send a file field named file")
    name = secure_filename(file.filename or "")
    if not name:
        abort(400, "the file name must contain letters or digits")
    folder = Path(app.config["UPLOAD_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            file.save(out)  # copied in blocks
        os.replace(partial, folder / name)
    except BaseException:
        os.unlink(partial)
        raise
    return {"name": name, "size": (folder / name).stat().st_size}, 201


# [form-upload-end]
