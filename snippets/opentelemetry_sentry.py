"""Sentry and a streamed response: a transaction that lasts as long as the body."""

import os
import time

import sentry_sdk
from flask import Flask, Response, request

from snippets.checks import whole_number

# Set SENTRY_DSN as you would in production; sample every trace for the demo.
sentry_sdk.init(dsn=os.environ.get("SENTRY_DSN"), traces_sample_rate=1.0)
app = Flask(__name__)
ROW_SECONDS = 0.05


def make_row(n):
    time.sleep(ROW_SECONDS)  # the slow part of a row
    return f"row {n}\n"


# [naive]
@app.get("/report-naive")
def report_naive():
    rows = whole_number("rows", 1, 1000, default=3)

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
    rows = whole_number("rows", 1, 1000, default=3)
    # A transaction of its own for the body, in the request's trace: the
    # request's span is its parent (Sentry traces no HEAD: then the trace's).
    body = sentry_sdk.start_transaction(
        sentry_sdk.continue_trace(
            {"sentry-trace": sentry_sdk.get_traceparent()},
            op="http.server.body",
            name=f"{request.method} /report body",
        )
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
