"""The life of a streamed response: hooks, session, teardown, body, close."""

import logging
import sqlite3
import time

from flask import (
    Flask,
    Response,
    abort,
    after_this_request,
    g,
    request,
    stream_with_context,
)
from flask.sessions import SecureCookieSessionInterface

from snippets.checks import secret_key

app = Flask(__name__)
app.secret_key = secret_key()
app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # larger uploads get a 413
app.logger.setLevel(logging.INFO)  # Flask shows only warnings unless debugging

# [record]
EVENTS = []  # what happened, in order; the examples read it


def record(event):
    EVENTS.append(event)
    app.logger.info("event: %s", event)  # for servers in another process


class RecordingSessionInterface(SecureCookieSessionInterface):
    def save_session(self, app, session, response):
        record("session saved")
        super().save_session(app, session, response)


app.session_interface = RecordingSessionInterface()


@app.after_request
def after_request(response):
    record("after_request")
    return response


@app.teardown_request
def teardown_request(exc):
    record("teardown_request")


@app.teardown_appcontext
def teardown_appcontext(exc):
    record("teardown_appcontext")
    db = g.pop("db", None)  # pop, not g.db: safe when teardown runs twice
    if db is not None:
        db.close()


# [record-end]


def get_db():
    if "db" not in g:
        g.db = sqlite3.connect(":memory:")
    return g.db


# [routes]
def numbers(count):
    record("body starts")
    try:
        for number in range(1, count + 1):
            yield f"{number}\n"
        record("body ends")
    finally:  # also runs when the response is closed early
        record("generator finally")


def respond(body):
    @after_this_request
    def after_this(response):
        record("after_this_request")
        return response

    response = Response(body, mimetype="text/plain")
    response.call_on_close(lambda: record("call_on_close"))
    record("view returns")
    return response


def count_arg():
    raw = request.args.get("n", "2")
    try:
        n = int(raw)
    except ValueError:
        abort(400, "n must be a whole number from 1 to 1000")
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= n <= 1000:
        abort(400, "n must be a whole number from 1 to 1000")
    return n


@app.get("/plain")
def plain():
    return respond(numbers(count_arg()))


@app.get("/wrapped")
def wrapped():
    return respond(stream_with_context(numbers(count_arg())))


# [routes-end]


# [upload]
@app.post("/upload")
def upload():
    if "data" not in request.files:
        abort(400, "send the file in a multipart field named data")
    content = request.files["data"].read()  # read in the view, not the generator

    def generate():
        for line in content.splitlines(keepends=True):
            yield line.upper()

    return Response(generate(), mimetype="text/plain")


# [upload-end]


# [db]
@app.get("/db-captured")
def db_captured():
    db = get_db()  # closed by the teardown that runs when the view returns

    @stream_with_context
    def generate():
        yield f"{db.execute('SELECT 6 * 7').fetchone()[0]}\n"

    return Response(generate(), mimetype="text/plain")


@app.get("/db")
def database():
    @stream_with_context
    def generate():
        db = get_db()  # fetched where it is used: a fresh connection if needed
        yield f"{db.execute('SELECT 6 * 7').fetchone()[0]}\n"

    return Response(generate(), mimetype="text/plain")


# [db-end]


# [disconnect]
@app.get("/wait")
def wait():
    raw = request.args.get("seconds", "")
    try:
        seconds = int(raw)
    except ValueError:
        abort(400, "seconds must be a whole number from 1 to 30")
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= seconds <= 30:
        abort(400, "seconds must be a whole number from 1 to 30")
    if request.args.get("beat") not in {"yes", "no"}:
        abort(400, "beat must be yes or no")
    chunk = ": still here\n" if request.args["beat"] == "yes" else ""

    def generate(deadline):
        record("body starts")
        try:
            while time.monotonic() < deadline:
                yield chunk  # "" writes nothing: a gone client is not noticed
                time.sleep(0.05)
            yield "done\n"
            record("body ends")
        except GeneratorExit:
            record("client gone")
            raise
        finally:
            record("generator finally")

    deadline = time.monotonic() + seconds
    return respond(stream_with_context(generate(deadline)))


# [disconnect-end]
