"""Every whole number a snippet reads from a request is ASCII digits, checked
with ``try: n = int(raw)`` / ``except ValueError: abort(400, ...)`` plus
``raw.isascii() and raw.isdecimal()`` and a range check. So:

* what :func:`int` refuses is a 400, never a 500: more than 4,300 digits
  (``int()`` raises ``ValueError`` there), ``"3.0"``, ``"1e3"``, ``""``;
* what :func:`int` reads but is not ASCII digits is a 400 too: ``" 3"``,
  ``"+3"``, ``"0_3"``, and the digits of other scripts (U+0663 ARABIC-INDIC
  DIGIT THREE, U+FF13 FULLWIDTH DIGIT THREE, ...), while the same value in
  ASCII digits is accepted;
* what is ASCII digits is then range-checked: ``"-1"`` is a 400 (except for
  ``fail_after``, whose default -1 means "never").

Each case sends the value where its view reads it (query string, form body or
header), and a refused value must get the view's own message naming the
parameter, so a case that does not reach its parameter fails.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from typing import NamedTuple

import pytest

from snippets import jobs as job_progress
from snippets import lifecycle
from snippets import restarts as graceful_stream
from snippets.errors import app as errors_app
from tests.servers import ROOT, wait_until

HUGE = "9" * 5000
REFUSED = [HUGE, "-1", "3.0", "1e3", "", "three", "0x3", "3 3"]
REFUSED_IDS = ["huge", "minus", "decimal", "exponent", "empty", "word", "hex", "two"]


def lenient(value):
    """Spellings of ``value`` (ASCII digits) that int() reads as the same
    number: padded, signed, with an underscore, in other scripts' digits."""

    def digits(zero):
        return "".join(chr(ord(zero) + int(d)) for d in value)

    return {
        "space": f" {value}",
        "trailing-space": f"{value} ",
        "tab": f"\t{value}",
        "nbsp": f"{value}\u00a0",
        "plus": f"+{value}",
        "underscore": f"0_{value}",
        "arabic-indic": digits("\u0660"),
        "fullwidth": digits("\uff10"),
        "thai": digits("\u0e50"),
        "math-bold": digits("\U0001d7ce"),
    }


LENIENT_IDS = list(lenient("3"))


class Case(NamedTuple):
    snippet: str
    method: str
    path: str
    where: str  # query, form or header
    parameter: str
    others: dict | None = None  # other parameters sent with it
    valid: str | None = "3"  # accepted in ASCII digits (None: not sent, see below)
    message: str | None = None  # default: "<parameter> must be a whole number"

    @property
    def id(self):
        return f"{self.snippet}-{self.path}-{self.parameter}"

    def expected(self):
        return (self.message or f"{self.parameter} must be a whole number").encode()


ID = "Last-Event-ID"
PROGRESS = "/reports/t1/progress.ndjson"
OUR_EVENT = f"{ID} must be the id of an event from this stream"
# A valid value to celery_progress reaches Redis (its broker and result
# store), which is not running here, and a valid /export writes the session to
# Redis: for those the ASCII value is not sent (tests/extensions cover them
# with the real stores).
CASES = [
    Case("responses", "get", "/count", "query", "n"),
    Case("csv_export_limits", "get", "/export.csv", "query", "rows"),
    Case("templates", "get", "/report", "query", "rows"),
    Case("templates", "get", "/buffered", "query", "rows"),
    Case("broadcast", "get", "/stream", "query", "limit"),
    Case("downloads_reports", "get", "/report.csv", "query", "rows"),
    Case("downloads_reports", "get", "/leaky-report.csv", "query", "rows"),
    Case("mjpeg", "get", "/stream.mjpg", "query", "fps"),
    Case("mjpeg", "get", "/stream.mjpg", "query", "frames"),
    Case("mjpeg", "get", "/", "query", "fps"),
    Case("ndjson", "get", "/items.ndjson", "query", "count"),
    Case("ndjson", "get", "/items.json", "query", "count"),
    Case("proxies", "get", "/events", "query", "count"),
    Case("proxies", "get", "/events", "query", "interval_ms"),
    Case("proxies", "get", "/events", "query", "heartbeat_ms"),
    Case("proxies", "get", "/progress", "query", "steps"),
    Case("servers", "get", "/stream", "query", "chunks"),
    Case("servers", "get", "/stream", "query", "interval_ms"),
    Case("servers", "get", "/fast", "query", "lines"),
    Case("servers", "get", "/fast", "query", "batch"),
    Case("database_stock", "get", "/stock", "query", "rows"),
    Case("zip", "get", "/bundle.zip", "query", "rows"),
    Case("sse", "get", "/events", "query", "limit"),
    Case("sse", "get", "/events", "query", "every"),
    Case("sse", "get", "/events", "header", ID, message=OUR_EVENT),
    Case("lifecycle", "get", "/plain", "query", "n"),
    Case("lifecycle_disconnect", "get", "/wait", "query", "seconds", {"beat": "yes"}),
    Case("jobs_api", "post", "/jobs", "form", "steps"),
    Case("jobs_api", "post", "/jobs", "form", "fail_at", {"steps": "5"}),
    Case("jobs_api", "get", "/jobs/{job}/events", "header", ID),
    Case("asgi_servers", "get", "/ticks", "query", "seconds"),
    Case("asgi_servers", "get", "/ticks", "query", "interval_ms"),
    Case("views", "get", "/sync-generator", "query", "count"),
    Case("hosting", "get", "/answer", "query", "seconds", valid="0"),
    Case("hosting", "get", "/work", "query", "seconds"),
    Case("hosting", "get", "/work", "query", "heartbeat_ms"),
    Case("sse_auth_tickets", "get", "/events/bearer", "header", ID, valid=None),
    Case("sse_auth_tickets", "get", "/events/bearer", "query", "limit", valid=None),
    Case("writers", "get", "/rows.csv", "query", "rows"),
    Case("uwsgi", "get", "/events", "query", "count"),
    Case("uwsgi", "get", "/events", "query", "interval_ms"),
    Case("uwsgi", "get", "/events", "query", "pad"),
    Case("restarts", "get", "/events", "header", ID, None, "{tick}"),
    Case("flask_login", "get", "/report-wrapped", "query", "lines"),
    Case("flask_login", "get", "/report-broken", "query", "lines"),
    Case("opentelemetry", "get", "/report-naive", "query", "rows"),
    Case("flask_sqlalchemy", "get", "/stock-first", "query", "rows"),
    Case("errors", "get", "/cities/oslo", "query", "fail_after"),
    Case("command_output_full", "get", "/run/count", "query", "n"),
    Case("spreadsheets_built", "get", "/built.xlsx", "query", "rows"),
    Case("spreadsheets", "get", "/export.xlsx", "query", "rows"),
    Case("celery_reports", "post", "/reports", "form", "steps", valid=None),
    Case("celery_reports", "get", "/reports/t1/events", "header", ID, valid=None),
    Case("celery_reports", "get", PROGRESS, "query", "after", valid=None),
    Case("flask_session_stores", "get", "/export", "query", "lines", valid=None),
]
NEGATIVE_ALLOWED: set = set()  # errors' fail_after is 0 to 10; absent: never


@pytest.fixture(autouse=True)
def quick_jobs(monkeypatch):
    """Jobs started by these requests finish at once."""
    monkeypatch.setattr(job_progress, "STEP_SECONDS", 0)


def finished_job():
    """A job whose 5 events (queued, 3 steps, finished) are all stored."""
    client = job_progress.app.test_client()
    answer = {}

    def accepted():  # a 503 while MAX_RUNNING jobs of other cases still run
        answer["job"] = client.post("/jobs", data={"steps": "3"})
        return answer["job"].status_code == 202

    assert wait_until(accepted, timeout=60, interval=0.1)
    job = answer["job"].json
    client.get(job["events"]).get_data()  # the stream ends with the job
    return job["id"]


def client_for(case):
    client = importlib.import_module(f"snippets.{case.snippet}").app.test_client()
    if case.snippet == "flask_login":
        client.post("/login/1")
    elif case.snippet == "celery_reports":  # a task this session started
        with client.session_transaction() as session:
            session["reports"] = ["t1"]
    return client


def send(case, value):
    """One request with ``value`` where the case's view reads it. A header
    carries bytes: a value outside Latin-1 arrives as a WSGI server hands it
    on, its UTF-8 bytes read as Latin-1."""
    client, path = client_for(case), case.path
    if case.where == "query":
        kwargs = {"query_string": {**(case.others or {}), case.parameter: value}}
    elif case.where == "form":
        kwargs = {"data": {**(case.others or {}), case.parameter: value}}
    else:
        header = value.encode("utf-8").decode("latin-1")
        kwargs = {"headers": {case.parameter: header}}
        if "{job}" in path:
            path = path.format(job=finished_job())
    return getattr(client, case.method)(path, buffered=False, **kwargs)


def valid_value(case):
    if case.valid == "{tick}":  # an event of the last few seconds
        return str(graceful_stream.current_tick() - 2)
    return case.valid


def refused(case, value):
    """(status, whether the body names the parameter); a body that is not an
    error is a stream, and is not read."""
    with send(case, value) as response:
        status = response.status_code
        return status, status == 400 and case.expected() in response.get_data()


# An empty Last-Event-ID is no id at all (what a new EventSource sends): the
# SSE stream starts from its first event, so that pair is not generated.
MALFORMED = [
    pytest.param(case, value, id=f"{case.id}-{value_id}")
    for case in CASES
    for value, value_id in zip(REFUSED, REFUSED_IDS, strict=True)
    if (case.snippet, case.parameter, value) != ("sse", "Last-Event-ID", "")
]


@pytest.mark.parametrize(("case", "value"), MALFORMED)
def test_malformed_count_is_400(case, value):
    if value == "-1" and (case.snippet, case.parameter) in NEGATIVE_ALLOWED:
        value = "--1"  # "-1" is its default; "--1" is not a number at all
    assert refused(case, value) == (400, True)


@pytest.mark.parametrize("spelling", LENIENT_IDS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_count_int_would_read_as_three_is_400(case, spelling):
    """int() reads every one of these as the valid value; each is a 400 with
    the parameter's message, and the value in ASCII digits is not."""
    valid = valid_value(case) or "3"
    assert int(lenient(valid)[spelling]) == int(valid)  # what int() alone does
    assert refused(case, lenient(valid)[spelling]) == (400, True)
    if case.valid is not None:
        status, body = answer_to_valid(case, valid)
        assert status < 400, body


def answer_to_valid(case, value):
    """(status, the start of an error's body) for a valid value; a job waits,
    as in finished_job(), while MAX_RUNNING jobs of other cases still run."""
    answer = {}

    def answered():
        with send(case, value) as response:
            status = response.status_code
            # A stream's body may not end: read only an error's.
            answer["got"] = status, response.get_data()[:200] if status >= 400 else b""
        return not (case.snippet == "jobs_api" and status == 503)

    assert wait_until(answered, timeout=60, interval=0.1)
    return answer["got"]


# Snippets whose numbers are asked in a process of their own (the test named).
OUT_OF_PROCESS = {"opentelemetry_sentry": "test_sentry_snippet_refuses_them_too"}
SENTRY = """
import json, sys
from snippets.opentelemetry_sentry import app

client = app.test_client()
answers = {}
for path in ("/report", "/report-naive"):
    for value in json.loads(sys.argv[1]):
        with client.get(path, query_string={"rows": value}, buffered=False) as r:
            answers[f"{path} {value}"] = [
                r.status_code, b"rows must be a whole number" in r.data
            ]
print(json.dumps(answers))
"""


def test_sentry_snippet_refuses_them_too():
    """snippets/opentelemetry_sentry.py in an interpreter of its own: importing it
    calls sentry_sdk.init(), which patches Flask for the whole process."""
    values = [*REFUSED, *lenient("3").values()]
    done = subprocess.run(
        [sys.executable, "-c", SENTRY, json.dumps(values)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answers = json.loads(done.stdout)
    assert answers == {
        f"{path} {value}": [400, True]
        for path in ("/report", "/report-naive")
        for value in values
    }


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
        (lifecycle.app, "get", f"/plain?n={HUGE}", {}, b"n must be"),
        (lifecycle.app, "get", f"/wait?seconds={HUGE}&beat=yes", {}, b"seconds must"),
        (errors_app, "get", "/cities/oslo?fail_after=--1", {}, b"fail_after must"),
        (errors_app, "get", f"/cities/oslo?fail_after={HUGE}", {}, b"fail_after must"),
        (errors_app, "get", "/cities/oslo?fail_after=-%D9%A1", {}, b"fail_after must"),
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
