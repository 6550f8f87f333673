"""The job API on snippets/jobs.py's app: the size of a job read from the
form, its status, a stream that resumes after ``Last-Event-ID``, and Redis
with RQ instead of SQLite and threads when ``REDIS_URL`` is set."""

import json
import os
import uuid
from functools import cache

from flask import Response, abort, url_for

from snippets.checks import whole_number
from snippets.jobs import BUSY, ENDED, SqliteJobs, app, progress, run_job
from snippets.sse import STREAM_HEADERS

app.config["MAX_CONTENT_LENGTH"] = 16 * 1024  # a form of two numbers: 413 above
app.config["REDIS_URL"] = os.environ.get("REDIS_URL")  # unset: SQLite + thread

MAX_STEPS = 1000


# [store]
@cache
def open_store(redis_url, db_path):
    if redis_url:
        from snippets.jobs_queue import RedisJobs  # needs redis and rq installed

        return RedisJobs.from_url(redis_url, work=run_job)
    return SqliteJobs(db_path)


def jobs():
    return open_store(app.config["REDIS_URL"], app.config["JOBS_DB"])


# [store-end]


# [start]
@app.post("/jobs")
def start_job():
    steps = whole_number("steps", 1, MAX_STEPS, source="form")
    fail_at = whole_number("fail_at", 1, steps, default=0, source="form")
    store, job_id = jobs(), uuid.uuid4().hex
    if not store.start(job_id, steps, fail_at):  # records "queued" if it starts
        return BUSY
    status = url_for("job_status", job_id=job_id)
    events = url_for("job_events", job_id=job_id)
    return {"id": job_id, "status": status, "events": events}, 202, {"Location": status}


def last_event(store, job_id):
    events = store.events(job_id)
    if not events:
        abort(404, f"no job with id {job_id!r}")
    number, data = events[-1]
    return number, json.loads(data)


@app.get("/jobs/<job_id>")
def job_status(job_id):
    return last_event(jobs(), job_id)[1]


# [start-end]


# [stream]
@app.get("/jobs/<job_id>/events")
def job_events(job_id):
    store = jobs()
    number, event = last_event(store, job_id)
    # The last event a reconnecting browser saw; one never sent would wait forever.
    after = whole_number("Last-Event-ID", 0, number, default=0, source="headers")
    if after == number and event["state"] in ENDED:
        return "", 204  # nothing more will come: EventSource stops reconnecting
    stream = progress(store, job_id, after)
    return Response(stream, mimetype="text/event-stream", headers=STREAM_HEADERS)


# [stream-end]
