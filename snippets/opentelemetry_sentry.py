"""Sentry and a streamed response: a transaction that lasts as long as the body."""

import os
import time

import sentry_sdk
from flask import Flask, Response, abort, request

# Set SENTRY_DSN as you would in production; sample every trace for the demo.
sentry_sdk.init(dsn=os.environ.get("SENTRY_DSN"), traces_sample_rate=1.0)
app = Flask(__name__)
ROW_SECONDS = 0.05


def rows_arg():
    raw = request.args.get("rows", "3")
    try:
        rows = int(raw)
    except ValueError:
        abort(400, "rows must be a whole number from 1 to 1,000")
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= rows <= 1000:
        abort(400, "rows must be a whole number from 1 to 1,000")
    return rows


def make_row(n):
    time.sleep(ROW_SECONDS)  # the slow part of a row
    return f"row {n}\n"


# [naive]
@app.get("/report-naive")
def report_naive():
    rows = rows_arg()

    def generate():
        for n in range(1, rows + 1):
            with sentry_sdk.start_span(op="report.row", name="make row"):
                row = make_row(n)
            yield row

    return Response(generate(), mimetype="text/plain")


# [naive-end]


# [traced]
@app.get("/report")
def report():
    rows = rows_arg()
    # A transaction of its own for the body, in the request's trace.
    request_span = sentry_sdk.get_current_span()
    body = sentry_sdk.start_transaction(
        op="http.server.body",
        name="GET /report body",
        trace_id=request_span.trace_id,
        parent_span_id=request_span.span_id,
    )

    def generate():
        for n in range(1, rows + 1):
            with body.start_child(op="report.row", name="make row"):
                row = make_row(n)
            yield row

    response = Response(generate(), mimetype="text/plain")
    response.call_on_close(body.finish)  # sent when the server closes the body
    return response


# [traced-end]
