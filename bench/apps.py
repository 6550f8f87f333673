"""The apps the benchmarks serve: one module, every variant side by side.

The batched CSV is the site's own snippet (``snippets.csv_export``); the
other views are the variants it is compared with. Paths and timings come from
environment variables, so gunicorn can serve ``bench.apps:app`` as it is.
"""

import csv
import os
import time
from pathlib import Path

from flask import Flask, Response, abort, request, send_file

from snippets.csv_export import (
    HEADER,
    MAX_ROWS,
    WriteThrough,
    csv_chunks,
    fetch_rows,
    neutralise,
)

app = Flask(__name__)

FILE_CHUNK = 8 * 1024
SSE_INTERVAL = float(os.environ.get("BENCH_SSE_INTERVAL", "1.0"))


def row_count():
    raw = request.args.get("rows", "1000")
    if not raw.isdecimal() or not 1 <= int(raw) <= MAX_ROWS:
        abort(400, f"rows must be a whole number from 1 to {MAX_ROWS:,}")
    return int(raw)


# [unbatched]
def csv_lines(rows):
    """One string per row: the body has one chunk, and one write, per row."""
    writer = csv.writer(WriteThrough())  # the same dialect as csv_chunks
    yield writer.writerow(HEADER)
    for row in rows:
        yield writer.writerow([neutralise(value) for value in row])


# [unbatched-end]


def build_csv(rows):
    """The whole body first: the same bytes, held in memory at once."""
    return "".join(csv_chunks(rows))


@app.get("/batched.csv")
def batched():
    return Response(csv_chunks(fetch_rows(row_count())), mimetype="text/csv")


@app.get("/unbatched.csv")
def unbatched():
    return Response(csv_lines(fetch_rows(row_count())), mimetype="text/csv")


@app.get("/built.csv")
def built():
    return Response(build_csv(fetch_rows(row_count())), mimetype="text/csv")


# [files]
@app.get("/file")
def whole_file():
    # gunicorn hands the open file to sendfile(2): no copy through Python.
    return send_file(os.environ["BENCH_FILE"], mimetype="application/octet-stream")


@app.get("/file-chunks")
def file_chunks():
    path = Path(os.environ["BENCH_FILE"])

    def generate():
        with path.open("rb") as file:
            while chunk := file.read(FILE_CHUNK):
                yield chunk

    return Response(generate(), mimetype="application/octet-stream")


# [files-end]


# [sse]
@app.get("/sse")
def sse():
    def generate():
        yield "retry: 5000\n\n"
        while True:
            time.sleep(SSE_INTERVAL)
            yield ": heartbeat\n\n"

    return Response(generate(), mimetype="text/event-stream")


# [sse-end]
