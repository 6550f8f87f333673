"""Keep what a stream produced: an id in the session, the outcome in a store."""

# [recipe]
import os
import sqlite3
import tempfile
import uuid
from contextlib import closing

from flask import Flask, Response, abort, session

app = Flask(__name__)
app.secret_key = os.environ["FLASK_SECRET_KEY"]

TMP = tempfile.gettempdir()
DATABASE = os.path.join(TMP, "fsp-reports.sqlite3")
LINES = 100  # how long the report is
SCHEMA = "CREATE TABLE IF NOT EXISTS runs (id UNIQUE, state)"


def save(run_id, state):
    with closing(sqlite3.connect(DATABASE)) as db, db:
        db.execute(SCHEMA)
        row = (run_id, state)
        db.execute("REPLACE INTO runs VALUES (?, ?)", row)


@app.get("/report")
def report():
    run_id = uuid.uuid4().hex
    session["run_id"] = run_id  # in the view: saved
    save(run_id, "running")

    def generate():
        state = "stopped before line 1"
        try:
            for number in range(1, LINES + 1):
                state = f"stopped at line {number}"
                yield f"line {number}\n"
            state = f"complete: {LINES} lines"
        finally:  # the end, an error, or a client gone
            save(run_id, state)

    return Response(generate(), mimetype="text/plain")


@app.get("/report/last")
def last_report():
    run_id = session.get("run_id")
    if run_id is None:
        abort(404, "no report was started in this session")
    with closing(sqlite3.connect(DATABASE)) as db:
        query = "SELECT state FROM runs WHERE id = ?"
        row = db.execute(query, (run_id,)).fetchone()
    if row is None:
        abort(404, "this report is no longer stored")
    return {"id": run_id, "state": row[0]}


# [recipe-end]
