"""OpenTelemetry and a streamed response: a span that lasts as long as the body."""

# [recipe]
import time

from flask import Flask, Response
from opentelemetry import trace
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

app = Flask(__name__)
# In memory, so you can read the spans. In production, add your
# exporter (OTLP, say) with a BatchSpanProcessor instead.
exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
FlaskInstrumentor().instrument_app(app, tracer_provider=provider)
tracer = provider.get_tracer(__name__)
ROWS, ROW_SECONDS = 3, 0.05


@app.get("/report")
def report():
    # Started in the view, so its parent is the request span.
    body_span = tracer.start_span("GET /report body")

    def generate():
        for n in range(1, ROWS + 1):
            with trace.use_span(body_span):  # not across a yield
                row = make_row(n)
            yield row

    response = Response(generate(), mimetype="text/plain")
    response.call_on_close(body_span.end)  # when the body closes
    return response


def make_row(n):
    with tracer.start_as_current_span("make row"):
        time.sleep(ROW_SECONDS)  # the slow part of a row
        return f"row {n}\n"


# [recipe-end]

from snippets.checks import whole_number  # noqa: E402  (the variant below)


# [naive]
@app.get("/report-naive")
def report_naive():
    rows = whole_number("rows", 1, 1000, default=3)

    def generate():
        for n in range(1, rows + 1):
            yield make_row(n)

    return Response(generate(), mimetype="text/plain")


# [naive-end]
