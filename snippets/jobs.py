"""A long job started by one request, its progress streamed by another, through
a store: SQLite and a thread by default, Redis and RQ when REDIS_URL is set."""

import json
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from contextlib import closing
from functools import cache

from flask import Flask, Response, abort, request, url_for
from werkzeug.exceptions import ServiceUnavailable

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = 16 * 1024  # a form of two numbers: 413 above
app.config["REDIS_URL"] = os.environ.get("REDIS_URL")  # unset: SQLite + thread
app.config["JOBS_DB"] = os.environ.get(
    "JOBS_DB", os.path.join(tempfile.gettempdir(), "flask-jobs.sqlite3")
)

MAX_STEPS = 1000
MAX_RUNNING = 8  # jobs in threads at once; one more is a 503
STEP_SECONDS = float(os.environ.get("JOB_STEP_SECONDS", "0.1"))  # stand-in work
POLL_SECONDS = 0.1  # how often a stream looks for new events
HEARTBEAT_SECONDS = 15.0  # an idle stream still writes, to notice a gone client
ENDED = ("finished", "failed")


# [job]
def run_job(store, job_id, steps, fail_at=0):
    """The long work (a sum of squares), reporting after every step."""
    total = 0
    try:
        for i in range(1, steps + 1):
            time.sleep(STEP_SECONDS)
            if i == fail_at:
                raise ValueError(f"step {i} failed")
            total += i * i
            store.add(job_id, state="running", done=i, total=steps)
        store.add(job_id, state="finished", done=steps, total=steps, result=total)
    except Exception as exc:  # the reader must learn the job ended
        app.logger.exception("job %s failed", job_id)
        store.add(job_id, state="failed", error=str(exc))


# [job-end]


# [store]
class SqliteJobs:
    """Events in an SQLite file: any thread, request or worker process sees them."""

    def __init__(self, path):
        self.path = path
        self.sql(
            "CREATE TABLE IF NOT EXISTS events (job, n, data, PRIMARY KEY (job, n))"
        )

    def sql(self, query, args=()):
        # Closed after use; `with db` commits, or rolls back on an error.
        with closing(sqlite3.connect(self.path, timeout=10)) as db, db:
            return db.execute(query, args).fetchall()

    def add(self, job_id, **event):
        self.sql(
            "INSERT INTO events SELECT ?1, COALESCE(MAX(n), 0) + 1, ?2"
            " FROM events WHERE job = ?1",
            (job_id, json.dumps(event)),
        )

    def events(self, job_id, after=0):
        query = "SELECT n, data FROM events WHERE job = ? AND n > ? ORDER BY n"
        return self.sql(query, (job_id, after))

    running = threading.BoundedSemaphore(MAX_RUNNING)

    def start(self, job_id, steps, fail_at):
        """Run the job in a thread; False when MAX_RUNNING already run."""
        if not self.running.acquire(blocking=False):
            return False
        self.add(job_id, state="queued", done=0, total=steps)

        def work():  # a thread lives and dies with this process: short jobs
            try:
                run_job(self, job_id, steps, fail_at)
            finally:
                self.running.release()

        threading.Thread(target=work, daemon=True).start()
        return True


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
def whole_number(name, low, high):
    raw = request.form.get(name, "")
    try:
        number = int(raw)
    except ValueError:
        abort(400, f"{name} must be a whole number from {low} to {high}")
    if not (raw.isascii() and raw.isdecimal()) or not low <= number <= high:
        abort(400, f"{name} must be a whole number from {low} to {high}")
    return number


@app.post("/jobs")
def start_job():
    steps = whole_number("steps", 1, MAX_STEPS)
    fail_at = whole_number("fail_at", 1, steps) if "fail_at" in request.form else 0
    store, job_id = jobs(), uuid.uuid4().hex
    if not store.start(job_id, steps, fail_at):  # records "queued" if it starts
        raise ServiceUnavailable("too many jobs are running", retry_after=5)
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
    # The id of the last event a reconnecting browser saw.
    raw = request.headers.get("Last-Event-ID", "0")
    try:
        after = int(raw)
    except ValueError:
        abort(400, f"Last-Event-ID must be a whole number from 0 to {number}")
    # An id this job never sent would wait forever.
    if not (raw.isascii() and raw.isdecimal()) or not 0 <= after <= number:
        abort(400, f"Last-Event-ID must be a whole number from 0 to {number}")
    if after == number and event["state"] in ENDED:
        return "", 204  # nothing more will come: EventSource stops reconnecting
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    stream = progress(store, job_id, after)
    return Response(stream, mimetype="text/event-stream", headers=headers)


def progress(store, job_id, after):
    """Server-sent events: every stored event after `after`, until the end."""
    last_write = time.monotonic()
    while True:
        events = store.events(job_id, after)
        for number, data in events:
            yield f"id: {number}\ndata: {data}\n\n"
            if json.loads(data)["state"] in ENDED:
                return
        if events:
            after, last_write = events[-1][0], time.monotonic()
        elif time.monotonic() - last_write >= HEARTBEAT_SECONDS:
            yield ": still working\n\n"  # a comment: EventSource ignores it
            last_write = time.monotonic()
        time.sleep(POLL_SECONDS)


# [stream-end]
