"""A Celery task that reports progress with update_state, and Flask routes that
stream that progress as server-sent events or NDJSON, resume, and cancel.

    redis-server
    export REDIS_URL=redis://127.0.0.1:6379/0
    celery -A snippets.celery_reports:celery_app worker --pool=solo
    flask --app snippets.celery_reports run
"""

import json
import os
import time
from functools import cache

from celery import Celery, Task, shared_task
from celery.exceptions import Ignore
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    request,
    session,
    url_for,
)
from redis import Redis

from snippets.checks import secret_key, whole_number

MAX_STEPS = 1000
STEP_SECONDS = float(os.environ.get("REPORT_STEP_SECONDS", "0.2"))  # stand-in work
POLL_SECONDS = 0.1  # how often a stream reads the task's state
HEARTBEAT_SECONDS = 15.0  # an idle stream still writes, to notice a gone client
ENDED = {"SUCCESS", "FAILURE", "REVOKED", "CANCELLED"}
ID = "Last-Event-ID"


# [init]
def celery_init_app(app):
    """Flask's documented pattern: each task runs inside an app context."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.name, task_cls=FlaskTask)
    celery.config_from_object(app.config["CELERY"])
    app.extensions["celery"] = celery
    return celery


def create_app(redis_url):
    app = Flask(__name__)
    app.secret_key = secret_key()
    app.config["REDIS_URL"] = redis_url  # the cancel flags live here too
    app.config["CELERY"] = {"broker_url": redis_url, "result_backend": redis_url}
    celery_init_app(app)
    app.register_blueprint(reports)
    return app


# [init-end]


@cache
def redis(url):
    return Redis.from_url(url)


def cancel_key(task_id):
    return f"report:{task_id}:cancel"


# [task]
@shared_task(bind=True, name="reports.build")
def build_report(self, steps):
    """The long work (a sum of squares); checks for a cancel before each step."""
    flags = redis(current_app.config["REDIS_URL"])  # the app context: config
    total = 0
    for i in range(1, steps + 1):
        if flags.exists(cancel_key(self.request.id)):
            self.update_state(state="CANCELLED", meta={"done": i - 1, "total": steps})
            raise Ignore()  # keep the CANCELLED state: no SUCCESS written after it
        time.sleep(STEP_SECONDS)
        total += i * i
        self.update_state(state="PROGRESS", meta={"done": i, "total": steps})
    return {"done": steps, "total": steps, "result": total}


# [task-end]

reports = Blueprint("reports", __name__)


# [start]
@reports.post("/reports")
def start_report():
    steps = whole_number("steps", 1, MAX_STEPS, source="form")
    celery = current_app.extensions["celery"]
    task = celery.send_task(build_report.name, args=[steps])
    # Remember the id in the view: saved with the cookie, before any body.
    session["reports"] = [*session.get("reports", [])[-9:], task.id]
    events = url_for(".report_events", task_id=task.id)
    return {"id": task.id, "events": events}, 202, {"Location": events}


def own_task(task_id):
    """404 unless this session started the task: Celery calls any unknown id
    PENDING, so a stream for a made-up id would wait for ever."""
    if task_id not in session.get("reports", []):
        abort(404, f"no report {task_id!r} in this session")
    return current_app.extensions["celery"].AsyncResult(task_id)


@reports.post("/reports/<task_id>/cancel")
def cancel_report(task_id):
    own_task(task_id)
    redis(current_app.config["REDIS_URL"]).set(cancel_key(task_id), 1, ex=86400)
    return {"id": task_id, "cancel": "requested"}, 202


# [start-end]


# [progress]
def snapshots(result, after):
    """(id, event) for each step done after `after`, then the end; None when
    nothing is new. `result` is the task's AsyncResult."""
    sent = None if after == 0 else after
    while True:
        state, info = result.state, result.info  # read from the result backend
        if not isinstance(info, dict):  # None, or an exception: say only its name
            info = {"done": 0} if info is None else {"error": type(info).__name__}
        if state in ENDED:
            yield "end", {"state": state, **info}
            return  # the task is over, and so is the stream, whatever `after` was
        if sent is None or info.get("done", 0) > sent:
            sent = info.get("done", 0)
            yield str(sent), {"state": state, **info}
        else:
            yield None
        time.sleep(POLL_SECONDS)


# [progress-end]


# [streams]
@reports.get("/reports/<task_id>/events")
def report_events(task_id):
    result = own_task(task_id)
    last_id = request.headers.get("Last-Event-ID")  # a reconnecting browser
    if last_id == "end" and result.state in ENDED:
        return "", 204  # it has seen the end: EventSource stops
    # "end" of a task that still runs: start again.
    after = (
        0 if last_id == "end" else whole_number(ID, 0, MAX_STEPS, 0, source="headers")
    )

    def sse():
        quiet_since = time.monotonic()
        for item in snapshots(result, after):
            if item is not None:
                event_id, event = item
                yield f"id: {event_id}\ndata: {json.dumps(event)}\n\n"
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
                yield ": still working\n\n"  # a comment: EventSource ignores it
                quiet_since = time.monotonic()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(sse(), mimetype="text/event-stream", headers=headers)


@reports.get("/reports/<task_id>/progress.ndjson")
def report_ndjson(task_id):
    result = own_task(task_id)
    after = whole_number("after", 0, MAX_STEPS, default=0)
    items = filter(None, snapshots(result, after))
    lines = (json.dumps({"id": i, **event}) + "\n" for i, event in items)
    return Response(lines, mimetype="application/x-ndjson")


# [streams-end]

app = create_app(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
celery_app = app.extensions["celery"]
