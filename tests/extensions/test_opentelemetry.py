"""extensions/opentelemetry in process: which spans a streamed body leaves
behind. Over a socket, on Flask 3.1.1, and Sentry: test_opentelemetry_live.py."""

import pytest

from snippets.otel_stream import app, exporter


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
