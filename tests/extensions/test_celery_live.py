"""Celery 5.7 with a real worker and a real redis-server (broker and result
backend): proof for docs/extensions/celery.rst."""

import json
import os

import httpx
import pytest
from flask import request, session
from httpx_sse import connect_sse
from kombu.exceptions import EncodeError

from snippets import celery_reports as celery_progress
from snippets.celery_reports import create_app
from tests.servers import (
    WORKER_START_TIMEOUT,
    celery_workers,
    read_log,
    redis_server,
    wait_until,
    werkzeug_server,
)

pytestmark = [pytest.mark.live, pytest.mark.redis]

TARGET = "snippets.celery_reports:celery_app"
FAST = {"REPORT_STEP_SECONDS": "0.05"}


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


def db(redis_url, number):
    """Another database of the same server: a broker queue of its own."""
    return redis_url.rsplit("/", 1)[0] + f"/{number}"


@pytest.fixture(scope="module")
def workers(redis_url):
    """Three workers started together, each reading its own database: solo
    (the one most tests use; it also knows the probe task), threads, prefork."""
    probe = ("--include", "tests.extensions.celery_probe")
    specs = {
        redis_url: {"pool": "solo", "args": probe, "env": FAST},
        db(redis_url, 1): {"pool": "threads", "env": FAST},
        db(redis_url, 2): {"pool": "prefork", "env": FAST},
    }
    with celery_workers(TARGET, specs) as procs:
        yield {spec["pool"]: (url, procs[url]) for url, spec in specs.items()}


@pytest.fixture(scope="module")
def worker(workers):
    return workers["solo"][1]


@pytest.fixture
def app(redis_url, worker):
    return create_app(redis_url)


@pytest.fixture
def client(app):
    return app.test_client()


def sse(body):
    """(id, data) of each event of a text/event-stream body."""
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["id"], json.loads(fields["data"])))
    return events


def start(client, steps):
    response = client.post("/reports", data={"steps": str(steps)})
    assert response.status_code == 202
    return response.json


def wait_for_step(app, task_id, done):
    result = app.extensions["celery"].AsyncResult(task_id)
    assert wait_until(
        lambda: result.state == "PROGRESS" and result.info["done"] >= done
    ), result.state
    return result


def test_worker_becomes_ready_in_time(worker):
    assert 0 < worker.startup_seconds < WORKER_START_TIMEOUT
    log = read_log(worker)
    assert "reports.build" in log  # the [tasks] list
    if os.geteuid() == 0:  # as CI runs it: a warning, not a refusal (json, not pickle)
        assert "SecurityWarning: You're running the worker with superuser" in log


def test_sse_stream_follows_the_task_to_its_end(client):
    report = start(client, 5)
    response = client.get(report["events"])
    assert response.mimetype == "text/event-stream"
    events = sse(response.get_data(as_text=True))
    assert events[-1] == (
        "end",
        {"state": "SUCCESS", "done": 5, "total": 5, "result": 55},
    )
    steps = [int(event_id) for event_id, _ in events[:-1]]
    assert steps == sorted(set(steps))  # each snapshot once, in order
    assert all(data["state"] in ("PENDING", "PROGRESS") for _, data in events[:-1])


def test_ndjson_stream_ends_with_the_same_last_line(client):
    report = start(client, 3)
    response = client.get(f"/reports/{report['id']}/progress.ndjson")
    assert response.mimetype == "application/x-ndjson"
    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert lines[-1] == {
        "id": "end", "state": "SUCCESS", "done": 3, "total": 3, "result": 14,
    }  # fmt: skip


def test_last_event_id_resumes_after_that_step(redis_url, worker):
    """A real socket: read until step 2, drop the connection, reconnect with
    Last-Event-ID: 2; the new stream starts after step 2. (Then cancel, so
    the test does not wait for all 200 steps.)"""
    app = create_app(redis_url)
    with werkzeug_server(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        report = http.post("/reports", data={"steps": "200"}).json()
        with connect_sse(http, "GET", report["events"]) as source:
            for event in source.iter_sse():
                if event.id != "0" and int(event.id) >= 2:
                    seen = int(event.id)
                    break
        headers = {"Last-Event-ID": str(seen)}
        with connect_sse(http, "GET", report["events"], headers=headers) as source:
            events = source.iter_sse()
            first = next(events)
            assert http.post(f"/reports/{report['id']}/cancel").status_code == 202
            rest = [(event.id, json.loads(event.data)) for event in events]
    assert first.id != "end"
    assert int(first.id) > seen
    assert rest[-1][0] == "end"
    assert rest[-1][1]["state"] == "CANCELLED"


def test_after_the_end_a_reconnect_gets_204(client):
    report = start(client, 2)
    assert sse(client.get(report["events"]).get_data(as_text=True))[-1][0] == "end"
    response = client.get(report["events"], headers={"Last-Event-ID": "end"})
    assert response.status_code == 204


@pytest.mark.parametrize("last_id", ["1000", "end"])
def test_a_bogus_last_event_id_still_ends_with_the_task(client, last_id):
    """An id past any step of this task (or 'end' while it still runs) filters
    progress, but the stream still ends when the task does."""
    report = start(client, 3)
    response = client.get(report["events"], headers={"Last-Event-ID": last_id})
    events = sse(response.get_data(as_text=True))
    assert events[-1][0] == "end"
    if last_id == "1000":
        assert [event_id for event_id, _ in events] == ["end"]


@pytest.fixture(params=["solo", "threads", "prefork"])
def pool_app(request, workers):
    """(pool, an app whose queue only a worker of that pool reads, its log)."""
    url, proc = workers[request.param]
    return request.param, create_app(url), proc


def test_revoke_terminate_stops_only_a_prefork_task(pool_app):
    """revoke(terminate=True) sends a signal to the process that runs the
    task: prefork has a child process to kill; solo runs the task in the
    worker itself, and a thread cannot be killed, so the task runs to its end."""
    pool, app, proc = pool_app
    outcome = "REVOKED" if pool == "prefork" else "SUCCESS"
    steps = 400 if pool == "prefork" else 20  # 20 s if not killed, or 1 s
    client = app.test_client()
    report = start(client, steps)
    result = wait_for_step(app, report["id"], 1)
    result.revoke(terminate=True)
    event_id, last = sse(client.get(report["events"]).get_data(as_text=True))[-1]
    assert (event_id, last["state"]) == ("end", outcome)
    if outcome == "SUCCESS":
        assert last["result"] == sum(i * i for i in range(1, steps + 1))
    else:
        assert last["error"] == "TaskRevokedError"  # the name, not the message
        assert repr(result.info) == "TaskRevokedError('terminated')"
    if pool != "solo":  # the control message reached the pool at once
        assert wait_until(lambda: f"Terminating {report['id']}" in read_log(proc))
    if pool == "threads":
        assert "does not implement kill_job" in read_log(proc)


def test_cancel_flag_stops_the_task_at_its_next_step(pool_app):
    """The cooperative flag, with each pool: the task stops between steps
    and stores its own CANCELLED state (which Celery does not call ready)."""
    _, app, _ = pool_app
    client = app.test_client()
    report = start(client, 200)  # 10 s if nothing stops it
    wait_for_step(app, report["id"], 1)
    response = client.post(f"/reports/{report['id']}/cancel")
    assert response.status_code == 202
    event_id, last = sse(client.get(report["events"]).get_data(as_text=True))[-1]
    assert event_id == "end"
    assert last["state"] == "CANCELLED"
    assert 1 <= last["done"] < 200
    assert app.extensions["celery"].AsyncResult(report["id"]).ready() is False


def test_a_task_gets_the_app_context_but_no_request(app, client):
    """FlaskTask pushes an app context: config works. session and request
    need the request, which ended in another process."""

    @app.post("/probe")
    def probe():
        session["reports"] = ["r1"]
        celery = app.extensions["celery"]
        with pytest.raises(EncodeError) as caught:  # the session object itself
            celery.send_task("probe.request_context", args=[session])
        assert str(caught.value) == (
            "Object of type SecureCookieSession is not JSON serializable"
        )
        result = celery.send_task("probe.request_context", args=[dict(session)])
        return result.get(timeout=20)

    assert client.post("/probe").json == {
        "config": {"value": "redis://"},
        "session": {"error": "Working outside of request context."},
        "request": {"error": "Working outside of request context."},
        "copy": {"reports": ["r1"], "plan": "pro"},
        "copy_type": "dict",
    }
    assert client.get_cookie("session") is not None
    with client.session_transaction() as saved:
        assert "plan" not in saved  # the worker's change never came back


def test_the_request_itself_cannot_be_sent(app):
    celery = app.extensions["celery"]
    with app.test_request_context("/x"), pytest.raises(EncodeError) as caught:
        celery.send_task("probe.request_context", args=[request._get_current_object()])
    assert str(caught.value) == "Object of type Request is not JSON serializable"


def test_a_pending_task_keeps_its_stream_open_with_heartbeats(redis_url, monkeypatch):
    """No worker reads this queue: Celery says PENDING for ever, and the
    stream sends the first snapshot, then comments, until the client goes."""
    monkeypatch.setattr(celery_progress, "HEARTBEAT_SECONDS", 0.0)
    app = create_app(db(redis_url, 4))
    client = app.test_client()
    report = start(client, 3)
    response = client.get(report["events"])
    chunks = iter(response.response)
    assert next(chunks) == b'id: 0\ndata: {"state": "PENDING", "done": 0}\n\n'
    assert [next(chunks), next(chunks)] == [b": still working\n\n"] * 2
    response.close()


def test_celery_calls_an_id_it_never_saw_pending(app):
    assert app.extensions["celery"].AsyncResult("made-up").state == "PENDING"


def test_update_state_keeps_only_the_latest_state(app, redis_url):
    """One key per task in the result backend, overwritten by each state."""
    build = app.extensions["celery"].tasks["reports.build"]
    build.apply(args=[3], task_id="only-the-latest")
    raw = celery_progress.redis(redis_url)
    assert raw.keys("*only-the-latest*") == [b"celery-task-meta-only-the-latest"]
    stored = json.loads(raw.get("celery-task-meta-only-the-latest"))
    assert (stored["status"], stored["result"]) == (
        "PROGRESS",
        {"done": 3, "total": 3},
    )  # the last update_state; apply() here does not store its return value


def test_the_task_body_in_process(app):
    """The same task run by apply() here (coverage sees every line), with a
    cancel flag set before its first step."""
    build = app.extensions["celery"].tasks["reports.build"]
    with pytest.warns(DeprecationWarning, match="Call to deprecated setex"):
        result = build.apply(args=[3])  # Celery's Redis backend, on redis-py 8
    assert result.get() == {"done": 3, "total": 3, "result": 14}
    flags = celery_progress.redis(app.config["REDIS_URL"])
    flags.set(celery_progress.cancel_key("cancelled-early"), 1)
    result = build.apply(args=[3], task_id="cancelled-early")
    assert result.state == "IGNORED"
    stored = app.extensions["celery"].AsyncResult("cancelled-early")
    assert (stored.state, stored.info) == ("CANCELLED", {"done": 0, "total": 3})


# The key snippets/celery.py fell back to before it read FLASK_SECRET_KEY.
OLD_LITERAL_KEY = "dev only: set SECRET_KEY"


def forged_cookie(key, task_ids):
    """A session cookie that claims ``task_ids``, signed with ``key`` the way
    Flask signs its own."""
    from flask import Flask

    forger = Flask(__name__)
    forger.secret_key = key
    serializer = forger.session_interface.get_signing_serializer(forger)
    return serializer.dumps({"reports": task_ids})


def test_another_sessions_task_needs_the_real_key(app, client):
    """Ownership is a list of ids in the signed session. Signed with the old
    literal key, a cookie naming someone else's task gets a 404; signed with
    the app's key (which only the server knows) it would read the task."""
    report = start(client, 2)
    other = app.test_client()
    other.set_cookie("session", forged_cookie(OLD_LITERAL_KEY, [report["id"]]))
    refused = other.get(f"/reports/{report['id']}/progress.ndjson")
    assert refused.status_code == 404
    assert app.secret_key == os.environ["FLASK_SECRET_KEY"] != OLD_LITERAL_KEY
    other.set_cookie("session", forged_cookie(app.secret_key, [report["id"]]))
    read = other.get(f"/reports/{report['id']}/progress.ndjson")
    assert json.loads(read.get_data(as_text=True).splitlines()[-1])["done"] == 2


@pytest.mark.parametrize(
    "path", ["/events", "/progress.ndjson"], ids=["events", "ndjson"]
)
def test_head_on_a_report_stream_is_answered_like_get(client, path):
    report = start(client, 1)
    get = client.get(f"/reports/{report['id']}{path}")
    head = client.head(f"/reports/{report['id']}{path}")
    assert (head.status_code, head.data) == (200, b"")
    assert head.mimetype == get.mimetype
    assert client.head(f"/reports/made-up{path}").status_code == 404
