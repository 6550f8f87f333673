"""extensions/opentelemetry: FlaskInstrumentor's request span and a streamed
body, on Flask 3.1.1 and on the locked Flask (the second teardown)."""

import pytest

from snippets.otel_stream import app, exporter
from tests.servers import run_on_flask

LOCKED = "3.1.3"

# Runs in a fresh interpreter on each release: a stream_with_context route on
# the snippet's app (added before its first request), what the spans say,
# and anything OpenTelemetry logged.
PROBE = r"""
import logging
import time
from importlib.metadata import version

from flask import Response, stream_with_context

from snippets.otel_stream import app, exporter, make_row

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
print(repr(seen))
"""


@pytest.fixture(scope="module")
def probe():
    runs = {}

    def run(release):
        if release not in runs:
            runs[release] = run_on_flask(release, PROBE)
            assert runs[release]["flask"] == release
        return runs[release]

    return run


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


def test_naive_rows_are_roots_of_their_own_traces():
    exporter.clear()
    with app.test_client().get("/report-naive?rows=2") as response:
        assert response.get_data(as_text=True) == "row 1\nrow 2\n"
    request_span, *rows = exporter.get_finished_spans()
    assert request_span.name == "GET /report-naive"
    assert [row.parent for row in rows] == [None, None]


def test_body_span_is_not_ended_before_the_body_is_closed():
    exporter.clear()
    response = app.test_client().get("/report?rows=2")
    assert response.get_data(as_text=True) == "row 1\nrow 2\n"
    assert "GET /report body" not in [s.name for s in exporter.get_finished_spans()]
    response.close()
    assert exporter.get_finished_spans()[-1].name == "GET /report body"


@pytest.mark.parametrize("path", ["/report", "/report-naive"])
@pytest.mark.parametrize(
    "rows", ["0", "1001", "many", "", pytest.param("9" * 5000, id="huge")]
)
def test_bad_rows_are_refused_before_any_span_of_the_body(path, rows):
    response = app.test_client().get(f"{path}?rows={rows}")
    assert response.status_code == 400
    assert b"rows must be a whole number from 1 to 1,000" in response.data
