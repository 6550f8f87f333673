"""extensions/opentelemetry, the Sentry snippet, without a network: what its
SDK would send, kept by a transport in memory. ``sentry_sdk.init`` wraps
Flask for the whole process, so the snippet runs in an interpreter of its
own. Over a socket, against a local endpoint: test_opentelemetry_live.py."""

import ast
import os
import subprocess
import sys

import pytest

from tests.servers import ROOT

DSN = "http://public-key@127.0.0.1:9/42"  # never reached: the transport keeps all

SCRIPT = """
import sentry_sdk
from sentry_sdk.transport import Transport

from snippets.opentelemetry_sentry import app


class Keep(Transport):
    envelopes = []

    def capture_envelope(self, envelope):
        self.envelopes.append(envelope)

    def flush(self, timeout, callback=None):
        pass

    def kill(self):
        pass


client = sentry_sdk.get_client()
client.transport = Keep(client.options)
test_client = app.test_client()
answers = {}
for method in ("GET", "HEAD"):
    for path in (
        "/report-naive", "/report-naive?rows=2", "/report-naive?rows=0",
        "/report-naive?rows=many", "/report", "/report?rows=2", "/report?rows=0",
        "/report?rows=many",
    ):
        with test_client.open(path, method=method) as response:
            body = response.get_data(as_text=True)
            answers[f"{method} {path}"] = (response.status_code, body)
sent = [
    item.payload.json
    for envelope in Keep.envelopes
    for item in envelope.items
    if item.type == "transaction"
]
print(repr({
    "dsn": client.options["dsn"],
    "sample_rate": client.options["traces_sample_rate"],
    "answers": answers,
    "transactions": [
        {
            "name": event["transaction"],
            "trace_id": event["contexts"]["trace"]["trace_id"],
            "span_id": event["contexts"]["trace"]["span_id"],
            "parent": event["contexts"]["trace"].get("parent_span_id"),
            "op": event["contexts"]["trace"]["op"],
            "spans": [(s["op"], s.get("description")) for s in event["spans"]],
        }
        for event in sent
    ],
}))
"""


@pytest.fixture(scope="module")
def sent():
    env = {**os.environ, "SENTRY_DSN": DSN, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def test_sentry_reads_its_dsn_from_sentry_dsn_and_samples_every_trace(sent):
    assert sent["dsn"] == DSN
    assert sent["sample_rate"] == 1.0


@pytest.mark.parametrize("path", ["/report-naive?rows=2", "/report?rows=2"])
def test_head_on_every_sentry_route_is_answered_like_get(sent, path):
    """HEAD /report was a 500: Sentry traces no HEAD, so there was no request
    span to take the trace from (AttributeError on None.trace_id)."""
    get, head = sent["answers"][f"GET {path}"], sent["answers"][f"HEAD {path}"]
    assert get == (200, "row 1\nrow 2\n")
    assert head == (200, "")


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path", ["/report", "/report-naive"])
def test_sentry_routes_default_to_three_rows_and_refuse_bad_ones(sent, method, path):
    if method == "GET":
        assert sent["answers"][f"GET {path}"] == (200, "row 1\nrow 2\nrow 3\n")
    for rows in ("0", "many"):
        status, body = sent["answers"][f"{method} {path}?rows={rows}"]
        assert status == 400
        if method == "GET":
            assert "rows must be a whole number from 1 to 1,000" in body


def test_body_transaction_is_named_and_holds_the_row_spans(sent):
    """The body's transaction, its op, its parent (the request's span) and
    its children: one "make row" span of op report.row per row."""
    by_name = {}
    for event in sent["transactions"]:
        by_name.setdefault(event["name"], []).append(event)
    (body,) = [b for b in by_name["GET /report body"] if len(b["spans"]) == 2]
    assert body["op"] == "http.server.body"
    assert body["spans"] == [("report.row", "make row")] * 2
    (request,) = [r for r in by_name["report"] if r["trace_id"] == body["trace_id"]]
    assert body["parent"] == request["span_id"]
    # The naive route's row spans are never sent: its transaction is empty.
    assert all(event["spans"] == [] for event in by_name["report_naive"])
    # HEAD has no request transaction; its body's has no rows.
    assert [b["spans"] for b in by_name["HEAD /report body"]] == [[], []]
