"""Jobs whose progress lives in a store: proof for docs/state/jobs.rst."""

import json
import subprocess
import sys
import threading

import httpx
import pytest
from flask import Flask, session

from snippets import jobs as job_progress
from snippets import jobs_api
from snippets.jobs import SqliteJobs, app
from tests.servers import ROOT, free_port, process_server, wait_until


@pytest.fixture
def client():
    return app.test_client()


@pytest.fixture
def store(tmp_path, monkeypatch):
    """The app's store, in a file of this test's own."""
    monkeypatch.setitem(app.config, "JOBS_DB", str(tmp_path / "jobs.sqlite3"))
    return jobs_api.jobs()


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({}, "steps must be a whole number from 1 to 1,000"),
        ({"steps": "0"}, "steps must be a whole number from 1 to 1,000"),
        ({"steps": "1001"}, "steps must be a whole number from 1 to 1,000"),
        ({"steps": "-3"}, "steps must be a whole number from 1 to 1,000"),
        ({"steps": "2.5"}, "steps must be a whole number from 1 to 1,000"),
        ({"steps": "3", "fail_at": ""}, "fail_at must be a whole number from 1 to 3"),
        ({"steps": "3", "fail_at": "4"}, "fail_at must be a whole number from 1 to 3"),
    ],
)
def test_start_refuses_bad_input_with_400(client, form, message):
    response = client.post("/jobs", data=form)
    assert response.status_code == 400
    assert message in response.text


def test_unknown_job_is_404_for_status_and_events(client):
    for url in ("/jobs/nope", "/jobs/nope/events"):
        response = client.get(url)
        assert response.status_code == 404
        assert "no job with id &#39;nope&#39;" in response.text


def test_idle_stream_sends_heartbeat_comments(client, store, monkeypatch):
    """A queued job that nothing runs: the stream keeps writing comments, and
    those writes are how a server finds out that the client has gone."""
    monkeypatch.setattr(job_progress, "HEARTBEAT_SECONDS", 0)
    monkeypatch.setattr(job_progress, "POLL_SECONDS", 0.01)
    store.add("stuck", state="queued", done=0, total=3)
    response = client.get("/jobs/stuck/events")
    chunks = iter(response.response)
    assert next(chunks).startswith(b"id: 1\n")
    assert next(chunks) == b": still working\n\n"
    assert next(chunks) == b": still working\n\n"
    response.close()  # the client leaves: the generator is closed


def test_stream_reads_events_written_by_another_process(client, store, tmp_path):
    """The SQLite store is a file: a process other than the web app's (another
    gunicorn worker, a script) writes events the stream then sends."""
    code = (
        "import sys; from snippets.jobs import SqliteJobs\n"
        "jobs = SqliteJobs(sys.argv[1])\n"
        "jobs.add('elsewhere', state='queued', done=0, total=1)\n"
        "jobs.add('elsewhere', state='finished', done=1, total=1, result=1)\n"
    )
    argv = [sys.executable, "-c", code, store.path]
    subprocess.run(argv, cwd=ROOT, check=True, timeout=60)
    body = client.get("/jobs/elsewhere/events").text
    assert body.endswith(
        'id: 2\ndata: {"state": "finished", "done": 1, "total": 1, "result": 1}\n\n'
    )


def test_thread_changing_the_session_changes_nothing():
    """The view hands the live session object to a thread. The response (and
    its Set-Cookie) is complete before the thread changes it: lost."""
    demo = Flask(__name__)
    demo.secret_key = "test only"
    response_sent, thread_done = threading.Event(), threading.Event()

    def background(user_session):
        assert response_sent.wait(timeout=10)
        user_session["plan"] = "pro"
        thread_done.set()

    @demo.post("/start")
    def start():
        session["plan"] = "free"  # a change in the view: saved
        args = (session._get_current_object(),)
        threading.Thread(target=background, args=args).start()
        return "started"

    @demo.get("/plan")
    def plan():
        return session["plan"]

    client = demo.test_client()
    client.post("/start")
    cookie = client.get_cookie("session").value
    response_sent.set()
    assert thread_done.wait(timeout=10)
    assert client.get("/plan").text == "free"
    assert client.get_cookie("session").value == cookie


@pytest.mark.live
def test_thread_job_dies_with_its_process(tmp_path):
    """flask run with the thread variant: stop the server mid-job and the job
    stops with it; its last event stays "running", even after a restart."""
    db = str(tmp_path / "jobs.sqlite3")
    env = {"JOBS_DB": db, "JOB_STEP_SECONDS": "0.05", "REDIS_URL": ""}

    def flask_run():
        port = free_port()
        argv = [sys.executable, "-m", "flask", "--app", "snippets.jobs"]
        argv += ["run", "--port", str(port)]
        return process_server(argv, port, env=env), f"http://127.0.0.1:{port}"

    server, url = flask_run()
    with server, httpx.Client(base_url=url, timeout=30) as http:
        job = http.post("/jobs", data={"steps": "1000"}).json()
        with http.stream("GET", job["events"]) as response:
            for line in response.iter_lines():
                if line == "id: 3":
                    break
    # The server process has exited: nothing can write for this job any more.
    last = json.loads(SqliteJobs(db).events(job["id"])[-1][1])
    assert last["state"] == "running"
    assert last["done"] < 1000

    server, url = flask_run()
    with server, httpx.Client(base_url=url, timeout=30) as http:
        assert http.get(job["status"]).json() == last


def test_jobs_beyond_the_thread_cap_get_503_with_retry_after(
    client, store, monkeypatch
):
    """One thread per request had no cap: 500 requests made 488 threads. Now
    MAX_RUNNING (8) jobs run at once; the next requests get a 503 with
    Retry-After and start no thread, and a slot frees when a job ends."""
    release = threading.Event()

    def blocked_job(store, job_id, steps, fail_at):
        release.wait(timeout=30)

    monkeypatch.setattr(job_progress, "run_job", blocked_job)
    # The threads already running: one a test before left may end meanwhile,
    # so the new threads are counted, not the total.
    before = set(threading.enumerate())
    started = []
    try:
        answers = [client.post("/jobs", data={"steps": "1"}) for _ in range(500)]
        codes = [response.status_code for response in answers]
        assert codes.count(202) == job_progress.MAX_RUNNING == 8
        assert codes.count(503) == 492
        refused = answers[-1]
        assert refused.headers["Retry-After"] == "5"
        assert b"too many jobs are running" in refused.data
        started = [t for t in threading.enumerate() if t not in before]
        assert len(started) == 8
        # A refused job stored nothing: only the 8 accepted jobs have events.
        assert store.sql("SELECT COUNT(DISTINCT job) FROM events") == [(8,)]
    finally:
        release.set()
    assert wait_until(lambda: not any(t.is_alive() for t in started))
    assert client.post("/jobs", data={"steps": "1"}).status_code == 202


def test_job_queue_does_not_import_job_progress():
    """jobs_queue.py once imported jobs.py, which imports jobs_queue.py
    when REDIS_URL is set: a circle. Now the job function is handed to the
    Redis store, and the worker finds it by its dotted name."""
    code = (
        "import sys, snippets.jobs_queue; "
        "assert 'snippets.jobs' not in sys.modules, 'circle'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


HUGE = "9" * 5000  # int() refuses more than 4,300 digits with a ValueError


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


def test_recipe_unknown_job_is_404_not_a_stream_that_never_ends(client):
    response = client.get("/report/nope/events")
    assert response.status_code == 404
    assert b"no such job" in response.data


def test_recipe_start_beyond_the_cap_is_503(client, store, monkeypatch):
    """The recipe's /report shares the cap: a ninth job while eight run is a
    503 with Retry-After, and a slot frees when a job ends."""
    release = threading.Event()
    monkeypatch.setattr(job_progress, "run_job", lambda *args: release.wait(30))
    before = set(threading.enumerate())
    try:
        codes = [client.post("/report").status_code for _ in range(9)]
        assert codes == [202] * 8 + [503]
        refused = client.post("/report")
        assert refused.headers["Retry-After"] == "5"
        assert refused.json == {"error": "too many jobs are running"}
    finally:
        release.set()
    started = [t for t in threading.enumerate() if t not in before]
    assert wait_until(lambda: not any(t.is_alive() for t in started))
    assert client.post("/report").status_code == 202
