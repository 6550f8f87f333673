"""extensions/opentelemetry in process: which spans a streamed body leaves
behind. Over a socket, on Flask 3.1.1, and Sentry: test_opentelemetry_live.py."""

import time

import pytest

from snippets.opentelemetry import app, exporter


def test_naive_rows_are_roots_of_their_own_traces():
    exporter.clear()
    with app.test_client().get("/report-naive?rows=2") as response:
        assert response.get_data(as_text=True) == "row 1\nrow 2\n"
    request_span, *rows = exporter.get_finished_spans()
    assert request_span.name == "GET /report-naive"
    assert [row.parent for row in rows] == [None, None]


def test_body_span_is_not_ended_before_the_body_is_closed():
    exporter.clear()
    response = app.test_client().get("/report")
    assert response.get_data(as_text=True) == "row 1\nrow 2\nrow 3\n"
    assert "GET /report body" not in [s.name for s in exporter.get_finished_spans()]
    response.close()
    assert exporter.get_finished_spans()[-1].name == "GET /report body"


@pytest.mark.parametrize(
    "rows", ["0", "1001", "many", "", pytest.param("9" * 5000, id="huge")]
)
def test_bad_rows_are_refused_before_any_span_of_the_body(rows):
    response = app.test_client().get(f"/report-naive?rows={rows}")
    assert response.status_code == 400
    assert b"rows must be a whole number from 1 to 1,000" in response.data


def test_duration_metric_also_stops_when_the_view_returns():
    """FlaskInstrumentor's request-duration histogram is recorded when the
    WSGI app returns, before the body: it misses the stream too."""
    from flask import Flask, Response
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from snippets.opentelemetry import ROW_SECONDS, make_row, provider

    reader = InMemoryMetricReader()
    metered = Flask(__name__)
    FlaskInstrumentor().instrument_app(
        metered, tracer_provider=provider, meter_provider=MeterProvider([reader])
    )

    @metered.get("/rows")
    def rows():
        return Response(make_row(n) for n in range(1, 11))

    started = time.monotonic()
    with metered.test_client().get("/rows") as response:
        assert response.get_data(as_text=True).count("row ") == 10
    took = time.monotonic() - started
    (metric,) = [
        metric
        for resource in reader.get_metrics_data().resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "http.server.duration"
    ]
    (point,) = metric.data.data_points
    assert metric.unit == "ms"
    assert took >= 10 * ROW_SECONDS  # the body: at least 0.5 s of rows
    assert point.count == 1
    print(f"\nbody {took:.3f} s, http.server.duration {point.sum:.1f} ms")
    assert point.sum / 1000 < 10 * ROW_SECONDS  # the metric: less


@pytest.mark.parametrize("path", ["/report", "/report-naive"])
def test_head_on_every_route_is_answered_like_get(path):
    """HEAD gets the GET's status and type, and no body: the rows are never
    made. /report's body span still ends (its response is closed)."""
    exporter.clear()
    with app.test_client().head(path) as head:
        assert (head.status_code, head.data, head.mimetype) == (200, b"", "text/plain")
    assert "make row" not in [s.name for s in exporter.get_finished_spans()]
