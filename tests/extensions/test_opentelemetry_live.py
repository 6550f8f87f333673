"""extensions/opentelemetry over a real socket: the request span against the
stream's real duration (Werkzeug's threaded server, in this process, so the
test reads the spans from the snippet's in-memory exporter)."""

import time

import httpx
import pytest

from snippets.otel_stream import ROW_SECONDS, app, exporter
from tests.servers import wait_until

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


def test_body_span_lasts_as_long_as_the_stream(live_server, capsys):
    url = live_server(app)
    took, body = stream(url, f"/report?rows={ROWS}")
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


def test_body_span_ends_when_the_client_goes_away(live_server):
    url = live_server(app)
    exporter.clear()
    with httpx.stream("GET", f"{url}/report?rows=1000", timeout=30) as response:
        next(response.iter_raw())  # the first row, then hang up
    # The server notices on a failed write, closes the body: span ends.
    assert wait_until(lambda: spans_named("GET /report body"), timeout=30)
    (body_span,) = spans_named("GET /report body")
    assert len(spans_named("make row")) < 1000
    assert seconds(body_span) < 1000 * ROW_SECONDS
