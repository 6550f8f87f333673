"""Sessions and streamed responses: what is saved, what is lost, what works."""

import os
import sqlite3
import tempfile
import uuid
from contextlib import closing

from cachelib import FileSystemCache
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    after_this_request,
    request,
    session,
    stream_with_context,
)
from flask_session import Session

from snippets.checks import secret_key

SECRET_KEY = secret_key()
bp = Blueprint("streams", __name__)


# [saved]
@bp.get("/saved")
def saved():
    session["exports"] = session.get("exports", 0) + 1  # before the stream: saved

    def generate():
        yield "export started\n"

    return Response(generate(), mimetype="text/plain")


# [saved-end]


# [lost]
@bp.get("/lost")
def lost():
    @stream_with_context
    def generate():
        yield "working\n"
        session["finished"] = True  # too late: the headers are already out
        yield "done\n"

    return Response(generate(), mimetype="text/plain")


# [lost-end]


# [hook]
@bp.get("/hook")
def hook():
    calls = []

    @after_this_request
    def remember(response):
        session["hooked"] = True
        calls.append("remember")
        return response

    def generate():
        yield f"the hook has already run: {calls == ['remember']}\n"

    return Response(generate(), mimetype="text/plain")


# [hook-end]


# [vary]
@bp.get("/greet-late")
def greet_late():
    @stream_with_context
    def generate():
        yield f"exports so far: {session.get('exports', 0)}\n"

    return Response(generate(), mimetype="text/plain")


@bp.get("/greet")
def greet():
    exports = session.get("exports", 0)  # read in the view: Vary: Cookie

    def generate():
        yield f"exports so far: {exports}\n"

    return Response(generate(), mimetype="text/plain")


# [vary-end]


@bp.get("/session")
def show_session():
    return dict(session)


# [store]
DATABASE = os.environ.get(
    "REPORTS_DB", os.path.join(tempfile.gettempdir(), "fsp-reports.sqlite3")
)
MAX_LINES = 1000


def connect():
    db = sqlite3.connect(DATABASE)
    db.execute("CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, state TEXT)")
    return db


@bp.get("/report")
def report():
    raw = request.args.get("lines", "3")
    try:
        lines = int(raw)
    except ValueError:
        abort(400, f"lines must be a whole number from 1 to {MAX_LINES}")
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= lines <= MAX_LINES:
        abort(400, f"lines must be a whole number from 1 to {MAX_LINES}")
    run_id = uuid.uuid4().hex
    session["run_id"] = run_id  # only the id goes in the session, before streaming
    with closing(connect()) as db, db:
        db.execute("INSERT INTO runs VALUES (?, 'running')", (run_id,))

    def generate():
        try:
            for number in range(1, lines + 1):
                state = f"stopped at line {number}"
                yield f"line {number}\n"
            state = f"complete: {lines} lines"
        finally:  # runs at the end, on an error, and when the client goes away
            with closing(connect()) as db, db:
                db.execute("UPDATE runs SET state = ? WHERE id = ?", (state, run_id))

    return Response(generate(), mimetype="text/plain")


@bp.get("/report/last")
def last_report():
    if "run_id" not in session:
        abort(404, "no report was started in this session")
    with closing(connect()) as db:
        row = db.execute(
            "SELECT state FROM runs WHERE id = ?", (session["run_id"],)
        ).fetchone()
    if row is None:
        abort(404, "this report is no longer stored")
    return {"id": session["run_id"], "state": row[0]}


# [store-end]

app = Flask(__name__)
app.secret_key = SECRET_KEY
app.register_blueprint(bp)

# [server-side]
server_side_app = Flask(__name__)
server_side_app.secret_key = SECRET_KEY
server_side_app.config.update(
    SESSION_TYPE="cachelib",
    SESSION_CACHELIB=FileSystemCache(
        os.path.join(tempfile.gettempdir(), "fsp-flask-session"), threshold=500
    ),
)
Session(server_side_app)
server_side_app.register_blueprint(bp)
# [server-side-end]
