"""Every count a snippet reads is validated with the plain idiom
``try: n = int(raw)`` / ``except ValueError: abort(400, ...)`` plus a range
check. So:

* what :func:`int` refuses is a 400, never a 500: more than 4,300 digits
  (``int()`` raises ``ValueError`` there), ``"3.0"``, ``"1e3"``, ``""``;
* what :func:`int` reads is then range-checked: ``"-1"`` is a 400;
* what :func:`int` reads as 3 is 3: ``" 3"``, ``"+3"`` and the digits of
  other scripts (U+0663 ARABIC-INDIC DIGIT THREE, U+FF13 FULLWIDTH DIGIT
  THREE) get the same answer as ``"3"``. That is the documented choice
  (basics/responses): the number is unambiguous and still range-checked.

Each case sends the value where its view reads it (query string, form body or
header), and a refused value must get the view's own message naming the
parameter, so a case that does not reach its parameter fails.
"""

import importlib

import pytest

from snippets import job_progress, lifecycle, session_stream
from snippets.midstream_errors import app as errors_app

HUGE = "9" * 5000
REFUSED = [HUGE, "-1", "3.0", "1e3", "", "three", "0x3", "3 3"]
REFUSED_IDS = ["huge", "minus", "decimal", "exponent", "empty", "word", "hex", "two"]
READ_AS_THREE = [" 3", "+3", "\u0663", "\uff13", "3 "]
READ_AS_THREE_IDS = ["space", "plus", "arabic-indic", "fullwidth", "trailing-space"]

# (snippet, method, path, where, parameter, other parameters)
CASES = [
    ("hello_stream", "get", "/count", "query", "n", {}),
    ("csv_export", "get", "/export.csv", "query", "rows", {}),
    ("template_stream", "get", "/report", "query", "rows", {}),
    ("template_stream", "get", "/buffered", "query", "rows", {}),
    ("broadcast", "get", "/stream", "query", "limit", {}),
    ("downloads", "get", "/report.csv", "query", "rows", {}),
    ("mjpeg", "get", "/stream.mjpg", "query", "fps", {}),
    ("mjpeg", "get", "/stream.mjpg", "query", "frames", {}),
    ("mjpeg", "get", "/", "query", "fps", {}),
    ("ndjson", "get", "/items.ndjson", "query", "count", {}),
    ("ndjson", "get", "/items.json", "query", "count", {}),
    ("proxy_headers", "get", "/events", "query", "count", {}),
    ("proxy_headers", "get", "/events", "query", "interval_ms", {}),
    ("proxy_headers", "get", "/events", "query", "heartbeat_ms", {}),
    ("proxy_headers", "get", "/progress", "query", "steps", {}),
    ("server_probe", "get", "/stream", "query", "chunks", {}),
    ("server_probe", "get", "/stream", "query", "interval_ms", {}),
    ("stock_table", "get", "/stock", "query", "rows", {}),
    ("zip_download", "get", "/bundle.zip", "query", "rows", {}),
    ("sse", "get", "/events", "query", "limit", {}),
    ("sse", "get", "/events", "query", "every", {}),
    ("session_stream", "get", "/report", "query", "lines", {}),
    ("lifecycle", "get", "/plain", "query", "n", {}),
    ("lifecycle", "get", "/wait", "query", "seconds", {"beat": "yes"}),
    ("job_progress", "post", "/jobs", "form", "steps", {}),
    ("job_progress", "post", "/jobs", "form", "fail_at", {"steps": "5"}),
    ("job_progress", "get", "/jobs/{job}/events", "header", "Last-Event-ID", {}),
]
CASE_IDS = [f"{c[0]}-{c[2]}-{c[4]}" for c in CASES]


@pytest.fixture(autouse=True)
def quick_jobs(monkeypatch):
    """Jobs started by these requests finish at once."""
    monkeypatch.setattr(job_progress, "STEP_SECONDS", 0)


def finished_job():
    """A job whose 5 events (queued, 3 steps, finished) are all stored."""
    client = job_progress.app.test_client()
    job = client.post("/jobs", data={"steps": "3"}).json
    client.get(job["events"]).get_data()  # the stream ends with the job
    return job["id"]


def send(case, value):
    snippet, method, path, where, parameter, others = case
    client = importlib.import_module(f"snippets.{snippet}").app.test_client()
    if where == "query":
        kwargs = {"query_string": {**others, parameter: value}}
    elif where == "form":
        kwargs = {"data": {**others, parameter: value}}
    else:
        kwargs = {"headers": {parameter: value}}
        path = path.format(job=finished_job())
    return getattr(client, method)(path, **kwargs)


@pytest.mark.parametrize("value", REFUSED, ids=REFUSED_IDS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_malformed_count_is_400(case, value):
    if case[3] == "header" and value == HUGE:
        value = "9" * 5000  # still ASCII: a header can carry it
    response = send(case, value)
    try:
        assert response.status_code == 400, response.data[:200]
        assert f"{case[4]} must be a whole number".encode() in response.data
    finally:
        response.close()


# HTTP header values are Latin-1: a client cannot send "٣" or "３" in one, so
# those pairs are not generated (rather than skipped).
SENDABLE = [
    pytest.param(case, value, id=f"{case_id}-{value_id}")
    for case, case_id in zip(CASES, CASE_IDS, strict=True)
    for value, value_id in zip(READ_AS_THREE, READ_AS_THREE_IDS, strict=True)
    if case[3] != "header" or value.isascii()
]


@pytest.mark.parametrize(("case", "value"), SENDABLE)
def test_count_that_int_reads_as_three_is_three(case, value):
    answers = []
    for sent in [value, "3"]:  # one at a time: each stream closed before the next
        response = send(case, sent)
        try:
            finite = case[0] in {"hello_stream", "ndjson", "csv_export"}
            answers.append((response.status_code, finite and response.get_data()))
        finally:
            response.close()
    assert answers[0] == answers[1]
    assert answers[0][0] < 400


def test_last_event_id_beyond_the_last_event_is_400_not_a_stream_that_never_ends():
    """A Last-Event-ID this job never sent would wait forever for an event
    with a higher number, even after the job ended."""
    client = job_progress.app.test_client()
    job_id = finished_job()
    response = client.get(
        f"/jobs/{job_id}/events", headers={"Last-Event-ID": "999999999"}
    )
    assert response.status_code == 400
    assert b"Last-Event-ID must be a whole number from 0 to 5" in response.data
    assert (
        client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": "5"}).status_code
        == 204
    )


@pytest.mark.parametrize(
    ("app", "method", "path", "kwargs", "message"),
    [
        (session_stream.app, "get", f"/report?lines={HUGE}", {}, b"lines must be"),
        (lifecycle.app, "get", f"/plain?n={HUGE}", {}, b"n must be"),
        (lifecycle.app, "get", f"/wait?seconds={HUGE}&beat=yes", {}, b"seconds must"),
        (errors_app, "get", "/cities/oslo?fail_after=--1", {}, b"fail_after must"),
        (errors_app, "get", f"/cities/oslo?fail_after={HUGE}", {}, b"fail_after must"),
        (job_progress.app, "post", "/jobs", {"data": {"steps": HUGE}}, b"steps must"),
        (
            job_progress.app,
            "post",
            "/jobs",
            {"data": {"steps": "3", "fail_at": HUGE}},
            b"fail_at must",
        ),
    ],
)
def test_oversized_or_malformed_numbers_are_400_not_500(
    app, method, path, kwargs, message
):
    response = getattr(app.test_client(), method)(path, **kwargs)
    assert response.status_code == 400
    assert message in response.data
