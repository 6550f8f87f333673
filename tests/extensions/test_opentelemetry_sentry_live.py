"""extensions/opentelemetry, the Sentry part: the transaction Sentry's SDK
sends for a streamed response, recorded by a local HTTP endpoint that plays
sentry.io (DSN http://key@127.0.0.1:PORT/1). The app runs in a new
interpreter, because ``sentry_sdk.init`` patches Flask for the whole process.
"""

import gzip
import json
import threading
from datetime import datetime

import pytest
from werkzeug.wrappers import Request, Response

from tests.servers import run_on_flask

pytestmark = pytest.mark.live

LOCKED = "3.1.3"
ROWS = 6
ROW_SECONDS = 0.05  # as in snippets/sentry_stream.py

CLIENT = f"""
import sentry_sdk
from snippets.sentry_stream import app

client = app.test_client()
for path in ["/report-naive?rows={ROWS}", "/report?rows={ROWS}", "/report?rows=x",
             "/report?rows=0"]:
    with client.get(path) as response:
        response.get_data()
sentry_sdk.flush(timeout=10)
print("None")  # run_on_flask reads the last line as a literal
"""


class EnvelopeRecorder:
    """A WSGI app that keeps every event Sentry's SDK posts to it."""

    def __init__(self):
        self.items, self.lock = [], threading.Lock()

    def __call__(self, environ, start_response):
        request = Request(environ)
        data = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        elif request.headers.get("Content-Encoding") == "br":
            import brotli  # what the SDK uses when brotli is installed

            data = brotli.decompress(data)
        lines = data.split(b"\n")  # envelope header, then (item header, item)
        with self.lock:
            for header, item in zip(lines[1::2], lines[2::2], strict=False):
                self.items.append((json.loads(header)["type"], json.loads(item)))
        return Response("{}", mimetype="application/json")(environ, start_response)

    def transactions(self, name):
        return [
            item
            for kind, item in self.items
            if kind == "transaction" and item["transaction"] == name
        ]

    def names(self):
        return {
            item["transaction"] for kind, item in self.items if kind == "transaction"
        }


def seconds(event):
    start, end = (
        datetime.fromisoformat(event[k]) for k in ("start_timestamp", "timestamp")
    )
    return (end - start).total_seconds()


@pytest.fixture(scope="module")
def recorded():
    """Run the snippet under Sentry on each release; what the endpoint got."""
    from tests.servers import werkzeug_server

    runs = {}

    def run(release):
        if release not in runs:
            recorder = EnvelopeRecorder()
            with werkzeug_server(recorder) as url:
                dsn = url.replace("http://", "http://key@") + "/1"
                run_on_flask(release, CLIENT, {"SENTRY_DSN": dsn})
            runs[release] = recorder
        return runs[release]

    return run


@pytest.mark.parametrize("release", ["3.1.1", LOCKED])
def test_sentry_transaction_ends_when_the_view_returns_and_drops_body_spans(
    recorded, release, capsys
):
    (naive,) = recorded(release).transactions("report_naive")
    with capsys.disabled():
        print(
            f"\nSentry on Flask {release}: transaction {seconds(naive) * 1000:.1f} ms"
        )
    assert seconds(naive) < ROWS * ROW_SECONDS  # the body took longer than this
    assert naive["spans"] == []  # the six row spans were never sent ...
    # ... not even on their own: these are all the transactions sent.
    assert recorded(release).names() == {"report_naive", "report", "GET /report body"}


def test_body_transaction_lasts_as_long_as_the_stream(recorded, capsys):
    (body,) = recorded(LOCKED).transactions("GET /report body")
    body_trace = body["contexts"]["trace"]
    # Three "report" transactions: this stream, and the refused ?rows=x and 0.
    (request,) = [
        t
        for t in recorded(LOCKED).transactions("report")
        if t["contexts"]["trace"]["trace_id"] == body_trace["trace_id"]
    ]
    with capsys.disabled():
        print(
            f"\nSentry: request transaction {seconds(request) * 1000:.1f} ms,"
            f" body transaction {seconds(body):.3f} s"
        )
    assert seconds(body) >= ROWS * ROW_SECONDS > seconds(request)
    assert [span["op"] for span in body["spans"]] == ["report.row"] * ROWS
    assert body_trace["parent_span_id"] == request["contexts"]["trace"]["span_id"]
