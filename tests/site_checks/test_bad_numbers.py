"""Every count a snippet reads from the URL is refused with a 400, never a
500, however it is malformed. Python's ``int()`` raises ``ValueError`` for a
string of more than 4,300 digits, and accepts digits that are not ASCII
("٣" is 3), so ``str.isdecimal()`` alone is not a sufficient check.
"""

import importlib

import pytest

from snippets import job_progress, lifecycle, session_stream
from snippets.midstream_errors import app as errors_app

HUGE = "9" * 5000
ARABIC_THREE = "\u0663"

CASES = [
    ("hello_stream", "/count?n={}"),
    ("csv_export", "/export.csv?rows={}"),
    ("template_stream", "/report?rows={}"),
    ("template_stream", "/buffered?rows={}"),
    ("broadcast", "/stream?limit={}"),
    ("downloads", "/report.csv?rows={}"),
    ("mjpeg", "/stream.mjpg?fps={}"),
    ("mjpeg", "/stream.mjpg?frames={}"),
    ("mjpeg", "/?fps={}"),
    ("ndjson", "/items.ndjson?count={}"),
    ("ndjson", "/items.json?count={}"),
    ("proxy_headers", "/events?count={}"),
    ("proxy_headers", "/events?interval_ms={}"),
    ("proxy_headers", "/progress?steps={}"),
    ("server_probe", "/stream?chunks={}"),
    ("server_probe", "/stream?interval_ms={}"),
    ("stock_table", "/stock?rows={}"),
    ("zip_download", "/bundle.zip?rows={}"),
    ("sse", "/events?limit={}"),
    ("session_stream", "/report?lines={}"),
    ("job_progress", "/jobs?steps={}"),
]


@pytest.mark.parametrize("value", [HUGE, ARABIC_THREE], ids=["huge", "non-ascii"])
@pytest.mark.parametrize(("snippet", "path"), CASES, ids=[c[1] for c in CASES])
def test_malformed_count_is_400(snippet, path, value):
    app = importlib.import_module(f"snippets.{snippet}").app
    method = "post" if snippet == "job_progress" else "get"
    response = getattr(app.test_client(), method)(path.format(value))
    assert response.status_code == 400, response.data[:200]


HUGE = "9" * 5000  # int() refuses more than 4,300 digits with a ValueError


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
