"""A Celery task that reports its progress, and a Flask route that streams
it as server-sent events until the task ends.

    redis-server
    celery -A snippets.celery:celery_app worker --pool=solo
    flask --app snippets.celery run
"""

# [recipe]
import json
import os
import time

from celery import Celery, Task
from flask import Flask, Response, abort, session, url_for

REDIS_URL = os.environ.get(
    "REDIS_URL",
    "redis://127.0.0.1:6379/0",
)
STEPS, STEP_SECONDS = 10, 0.2  # the stand-in work
ENDED = {"SUCCESS", "FAILURE", "REVOKED"}

app = Flask(__name__)
app.secret_key = os.environ["FLASK_SECRET_KEY"]


class FlaskTask(Task):
    def __call__(self, *args, **kwargs):
        with app.app_context():  # tasks can read app.config
            return self.run(*args, **kwargs)


celery_app = Celery(app.name, task_cls=FlaskTask)
celery_app.conf.update(
    broker_url=REDIS_URL,
    result_backend=REDIS_URL,
)


@celery_app.task(bind=True, name="progress.build")
def build(self, steps):
    for done in range(1, steps + 1):
        time.sleep(STEP_SECONDS)
        meta = {"done": done, "total": steps}
        self.update_state(state="PROGRESS", meta=meta)
    return {"done": steps, "total": steps}


@app.post("/reports")
def start():
    task = build.delay(STEPS)
    # Remember the id in the view: the cookie goes out now.
    session["tasks"] = [*session.get("tasks", [])[-9:], task.id]
    return {"events": url_for("events", task_id=task.id)}, 202


@app.get("/reports/<task_id>/events")
def events(task_id):
    if task_id not in session.get("tasks", []):
        abort(404)  # Celery calls any unknown id PENDING
    result = celery_app.AsyncResult(task_id)

    def generate():
        sent = None
        while True:
            # Two reads: the info first, so it is never newer
            # than the state; once ended, read the last word.
            info, state = result.info, result.state
            if state in ENDED:
                info = result.info
            if isinstance(info, dict) and (state, info) != sent:
                sent = state, info  # a new state: send it
                data = json.dumps({"state": state, **info})
                yield f"data: {data}\n\n"
            if state in ENDED:  # the last event, then stop
                yield f"event: end\ndata: {json.dumps(state)}\n\n"
                return
            time.sleep(0.1)  # how often to read the state

    headers = {
        "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",  # nginx: pass each event on
    }
    return Response(
        generate(),
        mimetype="text/event-stream",
        headers=headers,
    )


# [recipe-end]
