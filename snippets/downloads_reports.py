"""Downloads of a file made for one request: a report written to a
temporary file, sent, and gone once sent."""

import csv
import os
import tempfile

from flask import Flask, send_file

from snippets.checks import whole_number

app = Flask(__name__)
MAX_ROWS = 100_000


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
    path = make_report(whole_number("rows", 1, MAX_ROWS, default=10))
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
    path = make_report(whole_number("rows", 1, MAX_ROWS, default=10))
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
