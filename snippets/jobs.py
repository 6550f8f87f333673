"""A long job started by one request, its progress streamed by another, through
a store: SQLite and a thread by default, Redis and RQ when REDIS_URL is set."""

# [recipe]
import json
import os
import sqlite3
import tempfile
import threading
import time
import uuid
from contextlib import closing

from flask import Flask, Response, abort

app = Flask(__name__)
app.config["JOBS_DB"] = os.environ.get(
    "JOBS_DB", os.path.join(tempfile.gettempdir(), "flask-jobs.sqlite3")
)

MAX_RUNNING = 8  # jobs in threads at once; one more is a 503
STEPS = 10  # the size of the recipe's job
STEP_SECONDS = float(os.environ.get("JOB_STEP_SECONDS", "0.1"))
POLL_SECONDS = 0.1  # how often a stream looks for new events
HEARTBEAT_SECONDS = 15.0  # an idle stream writes, to notice a gone client
ENDED = ("finished", "failed")
BUSY = {"error": "too many jobs are running"}, 503, {"Retry-After": "5"}


def run_job(store, job_id, steps, fail_at=0):
    """The long work (a sum of squares), reporting after every step."""
    total = 0
    try:
        for i in range(1, steps + 1):
            time.sleep(STEP_SECONDS)  # stand-in for real work
            if i == fail_at:
                raise ValueError(f"step {i} failed")
            total += i * i
            store.add(job_id, state="running", done=i, total=steps)
        store.add(job_id, state="finished", done=steps, total=steps, result=total)
    except Exception as exc:  # the reader must learn the job ended
        app.logger.exception("job %s failed", job_id)
        store.add(job_id, state="failed", error=str(exc))


class SqliteJobs:
    """Events in an SQLite file: every thread and process sees them."""

    running = threading.BoundedSemaphore(MAX_RUNNING)

    def __init__(self, path):
        self.path = path
        self.sql(
            "CREATE TABLE IF NOT EXISTS events (job, n, data, PRIMARY KEY (job, n))"
        )

    def sql(self, query, args=()):
        db = sqlite3.connect(self.path, timeout=10)
        with closing(db), db:  # commits, or rolls back on an error
            return db.execute(query, args).fetchall()

    def add(self, job_id, **event):
        self.sql(
            "INSERT INTO events SELECT ?1, COALESCE(MAX(n), 0) + 1,"
            " ?2 FROM events WHERE job = ?1",
            (job_id, json.dumps(event)),
        )

    def events(self, job_id, after=0):
        return self.sql(
            "SELECT n, data FROM events WHERE job = ? AND n > ? ORDER BY n",
            (job_id, after),
        )

    def start(self, job_id, steps, fail_at=0):
        """Run the job in a thread; False when MAX_RUNNING run."""
        if not self.running.acquire(blocking=False):
            return False
        self.add(job_id, state="queued", done=0, total=steps)

        def work():  # a thread dies with its process: short jobs
            try:
                run_job(self, job_id, steps, fail_at)
            finally:
                self.running.release()

        threading.Thread(target=work, daemon=True).start()
        return True


def progress(store, job_id, after=0):
    """Server-sent events: each stored event after `after`."""
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
            yield ": still working\n\n"  # EventSource ignores it
            last_write = time.monotonic()
        time.sleep(POLL_SECONDS)


@app.post("/report")
def start_report():
    store, job_id = SqliteJobs(app.config["JOBS_DB"]), uuid.uuid4().hex
    if not store.start(job_id, STEPS):
        return BUSY
    return {"events": f"/report/{job_id}/events"}, 202


@app.get("/report/<job_id>/events")
def report_events(job_id):
    store = SqliteJobs(app.config["JOBS_DB"])
    if not store.events(job_id):
        abort(404, "no such job")
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    body = progress(store, job_id)
    return Response(body, mimetype="text/event-stream", headers=headers)


# [recipe-end]

from snippets import jobs_api  # noqa: E402, F401 (/jobs: the full API)
