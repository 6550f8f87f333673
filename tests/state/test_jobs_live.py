"""The task-queue variant of docs/state/jobs.rst against a real redis-server:
RQ workers run the job, Redis holds its progress, Flask streams it."""

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import flask
import httpx
import pytest
from flask import Flask, session
from httpx_sse import connect_sse
from redis import Redis
from rq import Queue, SimpleWorker, Worker, get_current_job
from rq.job import Job, JobStatus

from snippets import jobs as job_progress
from tests.servers import ROOT, free_port, process_server, redis_server, stop

pytestmark = [pytest.mark.live, pytest.mark.redis]

RQ = str(Path(sys.executable).with_name("rq"))


@pytest.fixture
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture
def client(redis_url, monkeypatch):
    """The snippet's app as if started with REDIS_URL set."""
    monkeypatch.setitem(job_progress.app.config, "REDIS_URL", redis_url)
    return job_progress.app.test_client()


def worker_env(redis_url):
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "REDIS_URL": redis_url}


@contextlib.contextmanager
def rq_worker(redis_url):
    """`rq worker` in its own process until the block ends (then SIGTERM)."""
    argv = [RQ, "worker", "--url", redis_url, "--quiet"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=worker_env(redis_url))
    try:
        yield proc
    finally:
        stop(proc, timeout=30)


def run_burst_worker(redis_url):
    """`rq worker --burst`: run what is queued, then exit."""
    argv = [RQ, "worker", "--burst", "--url", redis_url, "--quiet"]
    subprocess.run(argv, cwd=ROOT, env=worker_env(redis_url), check=True, timeout=60)


def sse_events(body):
    """The (id, data) of each event in a server-sent events body."""
    events = [block.splitlines() for block in body.strip().split("\n\n")]
    return [(int(i[4:]), json.loads(d[6:])) for i, d in events]


def test_flask_and_rq_worker_processes_share_only_redis(redis_url):
    """flask run and rq worker, two processes configured by REDIS_URL alone.
    The queued event arrives before any worker exists; the rest arrives on
    the same open stream once a worker runs the job."""
    port = free_port()
    argv = [sys.executable, "-m", "flask", "--app", "snippets.jobs"]
    argv += ["run", "--port", str(port)]
    env = {"REDIS_URL": redis_url, "JOB_STEP_SECONDS": "0.05"}
    redis = Redis.from_url(redis_url)
    with (
        process_server(argv, port, env=env),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http,
    ):
        response = http.post("/jobs", data={"steps": "3"})
        assert response.status_code == 202
        job = response.json()
        with connect_sse(http, "GET", job["events"]) as source:
            events = source.iter_sse()
            first = next(events)
            assert (first.id, json.loads(first.data)["state"]) == ("1", "queued")
            assert Worker.all(connection=redis) == []  # nobody runs it yet
            assert Queue(connection=redis).job_ids == [job["id"]]
            with rq_worker(redis_url):
                rest = [(event.id, json.loads(event.data)) for event in events]
        assert [event_id for event_id, _ in rest] == ["2", "3", "4", "5"]
        assert rest[-1][1] == {"state": "finished", "done": 3, "total": 3, "result": 14}
        assert http.get(job["status"]).json()["result"] == 14
    rq_job = Job.fetch(job["id"], connection=redis)
    assert rq_job.get_status() == JobStatus.FINISHED
    assert rq_job.worker_name  # run by the worker process, not by Flask


def test_simple_worker_runs_the_queued_job(client, redis_url):
    """RQ's SimpleWorker in this process: the enqueued job, run to the end,
    with its events in a Redis list that expires after a day."""
    job = client.post("/jobs", data={"steps": "3"}).json
    redis = Redis.from_url(redis_url)
    SimpleWorker([Queue(connection=redis)], connection=redis).work(burst=True)
    events = sse_events(client.get(job["events"]).text)
    assert [state["state"] for _, state in events] == [
        "queued", "running", "running", "running", "finished",
    ]  # fmt: skip
    assert events[-1] == (5, {"state": "finished", "done": 3, "total": 3, "result": 14})
    ttl = redis.ttl(f"job:{job['id']}:events")
    assert 0 < ttl <= 24 * 60 * 60


def test_rq_reports_a_caught_failure_as_finished(client, redis_url):
    """run_job writes a failed event and returns: RQ sees a job that ended
    normally. The user's truth is the store."""
    job = client.post("/jobs", data={"steps": "3", "fail_at": "2"}).json
    run_burst_worker(redis_url)
    events = sse_events(client.get(job["events"]).text)
    assert events[-1] == (3, {"state": "failed", "error": "step 2 failed"})
    rq_job = Job.fetch(job["id"], connection=Redis.from_url(redis_url))
    assert rq_job.get_status() == JobStatus.FINISHED


# A task the worker process imports by name, as it would any task.
def upgrade_plan(session_copy):
    """Try every way a task might reach the user's session."""
    session_copy["plan"] = "pro"  # an unpickled copy, in another process
    try:
        flask.session["plan"] = "pro"
        error = None
    except RuntimeError as exc:
        error = str(exc).splitlines()[0]
    job = get_current_job()
    report = {"copy_after_change": session_copy["plan"], "error": error}
    job.connection.set(f"result:{job.id}", json.dumps(report))


def test_worker_cannot_touch_the_session(redis_url):
    """The session is a signed cookie written when the view returns; a worker
    has no request and no response. The job id kept in the session by the
    view, and a result stored in Redis under it, is the channel that works."""
    demo = Flask(__name__)
    demo.secret_key = "test only"
    redis = Redis.from_url(redis_url)

    @demo.post("/upgrade")
    def upgrade():
        session["plan"] = "free"
        job = Queue(connection=redis).enqueue(upgrade_plan, dict(session))
        session["job"] = job.id  # a change in the view: saved in the cookie
        return "", 202

    @demo.get("/me")
    def me():
        report = redis.get(f"result:{session['job']}")
        return {"plan": session["plan"], "worker": json.loads(report)}

    client = demo.test_client()
    assert client.post("/upgrade").status_code == 202
    cookie = client.get_cookie("session").value
    run_burst_worker(redis_url)
    assert client.get("/me").json == {
        "plan": "free",
        "worker": {
            "copy_after_change": "pro",
            "error": "Working outside of request context.",
        },
    }
    assert client.get_cookie("session").value == cookie
