"""Proofs for sentences on the state pages and docs/myths.rst that no other
test settled: each test names the page it proves."""

import logging
import sqlite3
import subprocess
import sys
import threading
import types
import warnings

import pytest
from cachelib import FileSystemCache
from flask import Flask, Response, g, stream_with_context
from flask_session import Session

from snippets import job_progress, lifecycle, session_stream
from snippets.midstream_errors import app as errors_app

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


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setitem(job_progress.app.config, "JOBS_DB", str(tmp_path / "j.db"))
    return job_progress.jobs()


def test_huge_last_event_id_is_400(store):
    store.add("job", state="finished", done=1, total=1, result=1)
    response = job_progress.app.test_client().get(
        "/jobs/job/events", headers={"Last-Event-ID": HUGE}
    )
    assert response.status_code == 400
    assert b"Last-Event-ID must be a whole number" in response.data


def test_bad_job_input_stores_nothing(store):
    """jobs.rst: bad input is refused before anything starts."""
    client = job_progress.app.test_client()
    for form in ({"steps": "ten"}, {"steps": "3", "fail_at": "4"}):
        assert client.post("/jobs", data=form).status_code == 400
    assert store.sql("SELECT COUNT(*) FROM events") == [(0,)]


def test_start_answers_202_while_the_job_has_not_run(store, monkeypatch):
    """jobs.rst: the view does not wait for the job."""
    release, ran = threading.Event(), threading.Event()

    def blocked_job(store, job_id, steps, fail_at=0):
        assert release.wait(timeout=10)
        ran.set()

    monkeypatch.setattr(job_progress, "run_job", blocked_job)
    response = job_progress.app.test_client().post("/jobs", data={"steps": "3"})
    assert response.status_code == 202
    assert not ran.is_set()  # the job is still blocked: the view did not wait
    assert store.events(response.json["id"])[-1][0] == 1  # only "queued"
    release.set()
    assert ran.wait(timeout=10)


def test_event_stream_sets_headers_for_proxies(store):
    """jobs.rst: Cache-Control: no-cache and X-Accel-Buffering: no."""
    store.add("job", state="finished", done=1, total=1, result=1)
    response = job_progress.app.test_client().get("/jobs/job/events")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"


def test_lost_session_change_logs_and_warns_nothing(caplog):
    """sessions.rst: "Nothing in the logs, no exception"."""
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        response = session_stream.app.test_client().get("/lost")
        assert response.get_data() == b"working\ndone\n"
    assert caplog.records == []


@pytest.mark.parametrize(("refresh", "set_cookie"), [(True, True), (False, False)])
def test_flask_session_refresh_each_request_sets_the_cookie(
    tmp_path, refresh, set_cookie
):
    """sessions.rst: with SESSION_REFRESH_EACH_REQUEST (True by default),
    Flask-Session 0.8 sends Set-Cookie on every response of a session."""
    app = Flask(__name__)
    app.secret_key = "test only"
    app.config.update(
        SESSION_TYPE="cachelib",
        SESSION_CACHELIB=FileSystemCache(str(tmp_path)),
        SESSION_REFRESH_EACH_REQUEST=refresh,
    )
    Session(app)
    app.register_blueprint(session_stream.bp)
    client = app.test_client()
    client.get("/saved")
    response = client.get("/lost")
    assert response.get_data() == b"working\ndone\n"
    assert ("Set-Cookie" in response.headers) is set_cookie


@pytest.mark.parametrize(("debug", "level"), [(False, "30"), (True, "10")])
def test_flask_logger_shows_only_warnings_unless_debug(debug, level):
    """lifecycle.rst: hence the snippet's setLevel(logging.INFO). A fresh
    interpreter, so that pytest's logging setup does not count."""
    code = (
        "from flask import Flask\n"
        f"app = Flask('x'); app.debug = {debug}\n"
        "print(app.logger.getEffectiveLevel())\n"
    )
    argv = [sys.executable, "-c", code]
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == level


def test_connection_opened_in_generator_is_closed_by_second_teardown(monkeypatch):
    """lifecycle.rst: in /db the generator gets its own connection, and the
    second teardown (after the last chunk) closes it."""
    opened = []

    def connect(path):
        opened.append(sqlite3.connect(path))
        return opened[-1]

    monkeypatch.setattr(lifecycle, "sqlite3", types.SimpleNamespace(connect=connect))
    response = lifecycle.app.test_client().get("/db")
    assert next(iter(response.response)) == b"42\n"
    assert len(opened) == 1
    opened[0].execute("SELECT 1")  # still open while the body runs
    response.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        opened[0].execute("SELECT 1")


def test_second_teardown_fails_after_the_last_chunk():
    """lifecycle.rst: a teardown that assumes it runs once fails after the
    last chunk, when the body can only be cut short."""
    fragile = Flask(__name__)

    @fragile.teardown_appcontext
    def close_resource(exc):
        g.pop("resource")

    @fragile.get("/")
    def index():
        g.resource = object()
        return Response(stream_with_context(iter(["a", "b"])))

    body = iter(fragile.test_client().get("/").response)
    assert [next(body), next(body)] == [b"a", b"b"]
    with pytest.raises(KeyError, match="resource"):
        next(body)
