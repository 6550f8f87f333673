"""extensions/opentelemetry over a real socket, on Flask 3.1.1, and Sentry.

* The request span against the stream's real duration: Werkzeug's threaded
  server, in this process, so the test reads the spans from the snippet's
  in-memory exporter.
* The second teardown: the same route on Flask 3.1.1 (fetched from the
  package index) and on the locked Flask, each in a new interpreter.
* Sentry: the transactions its SDK sends for a streamed response, recorded by
  a local HTTP endpoint that plays sentry.io (DSN http://key@127.0.0.1:PORT/1).
  The app runs in a new interpreter, because ``sentry_sdk.init`` replaces
  ``Flask.__call__`` for the whole process.
"""

import contextlib
import gzip
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
import pytest
from werkzeug.wrappers import Request, Response

import snippets.opentelemetry as traced
from snippets.opentelemetry import ROW_SECONDS, app, exporter
from tests.flask_versions import run_on_flask
from tests.servers import wait_until, werkzeug_server

pytestmark = pytest.mark.live

ROWS = 10  # at least ROWS * ROW_SECONDS = 0.5 s of work in the body


def stream(url, path):
    """Read the body over a socket; return (seconds until the last byte, body)."""
    with httpx.Client(timeout=30) as client:
        exporter.clear()
        started = time.monotonic()
        with client.stream("GET", f"{url}{path}") as response:
            assert response.status_code == 200
            body = b"".join(response.iter_raw())
        return time.monotonic() - started, body.decode()


def seconds(span):
    return (span.end_time - span.start_time) / 1e9


def spans_named(name):
    return [s for s in exporter.get_finished_spans() if s.name == name]


def test_request_span_ends_before_the_body_and_rows_are_orphans(live_server, capsys):
    url = live_server(app)
    took, body = stream(url, f"/report-naive?rows={ROWS}")
    assert body.count("row ") == ROWS
    assert wait_until(lambda: len(spans_named("make row")) == ROWS)
    (request_span,) = spans_named("GET /report-naive")
    rows = spans_named("make row")
    with capsys.disabled():
        print(
            f"\nnaive: stream {took:.3f} s over the socket,"
            f" request span {seconds(request_span) * 1000:.1f} ms"
        )
    # The request span is over before the first row is made ...
    assert request_span.end_time <= min(row.start_time for row in rows)
    assert took >= ROWS * ROW_SECONDS > seconds(request_span)
    # ... and every row span is the root of a trace of its own.
    assert all(row.parent is None for row in rows)
    assert len({row.context.trace_id for row in rows}) == ROWS
    assert request_span.context.trace_id not in {r.context.trace_id for r in rows}


def test_body_span_lasts_as_long_as_the_stream(live_server, capsys, monkeypatch):
    monkeypatch.setattr(traced, "ROWS", ROWS)
    url = live_server(app)
    took, body = stream(url, "/report")
    assert body.count("row ") == ROWS
    # call_on_close runs after the last chunk is written: wait for it.
    assert wait_until(lambda: spans_named("GET /report body"))
    (request_span,) = spans_named("GET /report")
    (body_span,) = spans_named("GET /report body")
    rows = spans_named("make row")
    with capsys.disabled():
        print(
            f"\ntraced: stream {took:.3f} s over the socket, request span"
            f" {seconds(request_span) * 1000:.1f} ms, body span"
            f" {seconds(body_span):.3f} s"
        )
    trace_id = request_span.context.trace_id
    assert body_span.parent.span_id == request_span.context.span_id
    assert all(row.parent.span_id == body_span.context.span_id for row in rows)
    assert {row.context.trace_id for row in rows} == {trace_id}
    # The body span covers every row; the request span only the view.
    assert body_span.start_time <= min(row.start_time for row in rows)
    assert body_span.end_time >= max(row.end_time for row in rows)
    assert seconds(body_span) >= ROWS * ROW_SECONDS > seconds(request_span)


def test_body_span_ends_when_the_client_goes_away(live_server, monkeypatch):
    monkeypatch.setattr(traced, "ROWS", 1000)
    url = live_server(app)
    exporter.clear()
    with httpx.stream("GET", f"{url}/report", timeout=30) as response:
        next(response.iter_raw())  # the first row, then hang up
    # The server notices on a failed write, closes the body: span ends.
    assert wait_until(lambda: spans_named("GET /report body"), timeout=30)
    (body_span,) = spans_named("GET /report body")
    assert len(spans_named("make row")) < 1000
    assert seconds(body_span) < 1000 * ROW_SECONDS


# --- the second teardown, on Flask 3.1.1 and the locked Flask ---------------

LOCKED = "3.1.3"
RELEASES = ["3.1.1", LOCKED]

# Runs in a fresh interpreter on each release: a stream_with_context route on
# the snippet's app (added before its first request), what the spans say,
# and anything OpenTelemetry logged.
PROBE = r"""
import logging
import time
from importlib.metadata import version

from flask import Response, stream_with_context

from snippets.opentelemetry import app, exporter, make_row

seen = {"flask": version("flask"), "teardowns": 0, "logged": []}


class Record(logging.Handler):
    def emit(self, record):
        seen["logged"].append(record.getMessage())


logging.getLogger("opentelemetry").addHandler(Record(logging.DEBUG))
logging.getLogger("opentelemetry").setLevel(logging.DEBUG)


@app.teardown_request
def count_teardown(exc):
    seen["teardowns"] += 1


@app.get("/report-wrapped")
def report_wrapped():
    def generate():
        seen["body starts"] = time.time_ns()
        for n in range(1, 4):
            yield make_row(n)
        seen["body ends"] = time.time_ns()

    return Response(stream_with_context(generate()))


with app.test_client().get("/report-wrapped") as response:
    assert response.get_data(as_text=True) == "row 1\nrow 2\nrow 3\n"
spans = exporter.get_finished_spans()
(request_span,) = [s for s in spans if s.name == "GET /report-wrapped"]
rows = [s for s in spans if s.name == "make row"]
seen["request span ends"] = (
    "before the body" if request_span.end_time <= seen["body starts"]
    else "after the body" if request_span.end_time >= seen["body ends"]
    else "during the body"
)
seen["rows in the request's trace"] = [
    row.context.trace_id == request_span.context.trace_id for row in rows
]
seen["server spans"] = len(spans) - len(rows)
"""


@pytest.mark.parametrize(
    ("release", "teardowns", "ends", "in_trace"),
    [("3.1.1", 1, "after the body", True), (LOCKED, 2, "before the body", False)],
)
def test_request_span_with_stream_with_context_ends_at_first_teardown(
    probe, release, teardowns, ends, in_trace
):
    """On 3.1.1 the one teardown came after the body, so the request span
    covered the stream and its rows; since 3.1.2 the span ends at the first
    teardown, and the second one does nothing: no second span, no error,
    nothing logged."""
    seen = probe(release)
    assert seen["teardowns"] == teardowns
    assert seen["request span ends"] == ends
    assert seen["rows in the request's trace"] == [in_trace] * 3
    assert seen["server spans"] == 1
    assert seen["logged"] == []


# --- Sentry ----------------------------------------------------------------

SENTRY_ROWS = 6  # of ROW_SECONDS each, in snippets/opentelemetry_sentry.py too

CLIENT = f"""
import sentry_sdk
from snippets.opentelemetry_sentry import app, make_row

sentry_seen = seen["sentry"] = {{"teardowns": []}}


@app.teardown_request
def count_sentry_teardown(exc):
    sentry_seen["teardowns"].append(time.time_ns())


@app.get("/report-wrapped")
def report_wrapped():  # teardown after the body on Flask 3.1.1
    def generate():
        for n in range(1, {SENTRY_ROWS} + 1):
            yield make_row(n)
        sentry_seen["body ends"] = time.time_ns()

    return Response(stream_with_context(generate()))


client = app.test_client()
paths = ["/report-naive?rows={SENTRY_ROWS}", "/report?rows={SENTRY_ROWS}"]
for path in [*paths, "/report?rows=x", "/report?rows=0"]:
    with client.get(path) as response:
        response.get_data()
sentry_seen["teardowns"].clear()  # count those of the next request only
with client.get("/report-wrapped") as response:
    response.get_data()
sentry_sdk.flush(timeout=10)
print(repr(seen))  # the OpenTelemetry probe's findings, run first
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


def event_seconds(event):
    start, end = (
        datetime.fromisoformat(event[k]) for k in ("start_timestamp", "timestamp")
    )
    return (end - start).total_seconds()


@pytest.fixture(scope="module")
def on_release():
    """Per release, in one new interpreter: the OpenTelemetry probe, then the
    Sentry snippet against its own recorder. Both releases run at once."""
    recorders = {release: EnvelopeRecorder() for release in RELEASES}
    with contextlib.ExitStack() as stack:
        urls = {r: stack.enter_context(werkzeug_server(recorders[r])) for r in RELEASES}

        def run(release):
            dsn = urls[release].replace("http://", "http://key@") + "/1"
            seen = run_on_flask(release, PROBE + CLIENT, {"SENTRY_DSN": dsn})
            assert seen["flask"] == release
            return seen, recorders[release]

        with ThreadPoolExecutor() as pool:
            runs = {release: pool.submit(run, release) for release in RELEASES}
            yield lambda release: runs[release].result()


@pytest.fixture
def probe(on_release):
    return lambda release: on_release(release)[0]


@pytest.fixture
def recorded(on_release):
    return lambda release: on_release(release)[1]


@pytest.mark.parametrize("release", RELEASES)
def test_sentry_transaction_ends_when_the_view_returns_and_drops_body_spans(
    recorded, release, capsys
):
    (naive,) = recorded(release).transactions("report_naive")
    took = event_seconds(naive)
    with capsys.disabled():
        print(f"\nSentry on Flask {release}: transaction {took * 1000:.1f} ms")
    assert took < SENTRY_ROWS * ROW_SECONDS  # the body took longer than this
    assert naive["spans"] == []  # the six row spans were never sent ...
    # ... not even on their own: these are all the transactions sent.
    assert recorded(release).names() == {
        "report_naive", "report", "GET /report body", "report_wrapped"
    }  # fmt: skip


@pytest.mark.parametrize("release", RELEASES)
def test_sentry_ends_its_transaction_when_the_wsgi_app_returns_not_at_teardown(
    probe, recorded, release
):
    """With stream_with_context, Flask 3.1.1 runs its one teardown after the
    body (3.1.2 and later run a second one there). Sentry's transaction is
    still shorter than the body: it ended when the WSGI app returned."""
    (wrapped,) = recorded(release).transactions("report_wrapped")
    sentry = probe(release)["sentry"]
    assert len(sentry["teardowns"]) == (1 if release == "3.1.1" else 2)
    assert sentry["teardowns"][-1] >= sentry["body ends"]  # after the body
    assert event_seconds(wrapped) < SENTRY_ROWS * ROW_SECONDS


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
            f"\nSentry: request transaction {event_seconds(request) * 1000:.1f} ms,"
            f" body transaction {event_seconds(body):.3f} s"
        )
    assert event_seconds(body) >= SENTRY_ROWS * ROW_SECONDS > event_seconds(request)
    assert [span["op"] for span in body["spans"]] == ["report.row"] * SENTRY_ROWS
    assert body_trace["parent_span_id"] == request["contexts"]["trace"]["span_id"]
