"""Downloads: let send_file do sizes, caching, ranges and sendfile for you."""

import csv
import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from flask import Flask, Response, abort, request, send_file, send_from_directory
from werkzeug.security import safe_join

app = Flask(__name__)
app.config["FILES_DIR"] = str(Path(__file__).parent / "files")
app.config.from_prefixed_env()  # FLASK_FILES_DIR=/srv/files overrides it

MAX_ROWS = 100_000


# [serve]
@app.get("/files/<path:name>")
def download(name):
    # "../", absolute paths and missing files all end in a 404.
    return send_from_directory(app.config["FILES_DIR"], name)


# [serve-end]


def rows_arg():
    raw = request.args.get("rows", "10")
    try:
        rows = int(raw)
    except ValueError:
        abort(400, f"rows must be a whole number from 1 to {MAX_ROWS:,}")
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= rows <= MAX_ROWS:
        abort(400, f"rows must be a whole number from 1 to {MAX_ROWS:,}")
    return rows


def make_report(rows):
    """Stand-in for a tool that writes its output to a file (PDF, video...)."""
    fd, path = tempfile.mkstemp(prefix="report-", suffix=".csv")
    try:
        with os.fdopen(fd, "w", newline="") as out:
            csv.writer(out).writerows((i, i * i) for i in range(1, rows + 1))
    except BaseException:
        os.unlink(path)  # never leave half a report behind
        raise
    return path


# [leaky]
@app.get("/leaky-report.csv")
def leaky_report():
    path = make_report(rows_arg())
    try:
        response = send_file(path, as_attachment=True)
    except BaseException:  # a Range past the end: send_file raises the 416
        os.unlink(path)
        raise
    # Does not run after a file download: the report stays on disk.
    response.call_on_close(lambda: os.unlink(path))
    return response


# [leaky-end]


# [report]
@app.get("/report.csv")
def report():
    path = make_report(rows_arg())
    file = open(path, "rb")  # noqa: SIM115 the server closes it after sending
    os.unlink(path)  # POSIX: the name goes now, the open file stays readable
    # conditional=False: a report made for this request has no version to
    # revalidate and nothing to resume, so no 304, no ranges, no Accept-Ranges.
    response = send_file(
        file,
        mimetype="text/csv",
        as_attachment=True,
        download_name="report.csv",
        conditional=False,
    )
    response.content_length = os.fstat(file.fileno()).st_size
    return response


# [report-end]


def checked_path(name):
    path = safe_join(app.config["FILES_DIR"], name)
    if path is None or not os.path.isfile(path):
        abort(404, "no such file")
    return path


# [chunks]
@app.get("/chunks/<path:name>")
def chunks(name):
    path = checked_path(name)

    def generate():
        with open(path, "rb") as file:
            while chunk := file.read(64 * 1024):
                yield chunk

    return Response(generate(), mimetype="application/octet-stream")


# [chunks-end]


# [accel]
@app.get("/protected/<path:name>")
def protected(name):
    if request.headers.get("Authorization") != "Bearer let-me-in":
        abort(403, "this file needs a valid token")
    # The normalised name, relative to the folder: "a/../b" becomes "b".
    name = os.path.relpath(checked_path(name), app.config["FILES_DIR"])
    # nginx sees the header, drops this empty body and sends the file itself.
    response = Response(headers={"X-Accel-Redirect": "/_protected/" + quote(name)})
    del response.headers["Content-Type"]  # let nginx pick it from the file name
    return response


# [accel-end]
