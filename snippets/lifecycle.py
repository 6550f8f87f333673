"""The life of a streamed response: hooks, session, teardown, body, close."""

# [recipe]
import sqlite3

from flask import Flask, Response

app = Flask(__name__)

ROWS = 10  # how many rows the stream sends


@app.get("/squares")
def squares():
    def generate():
        db = sqlite3.connect(":memory:")  # opened in here
        try:
            for n in range(1, ROWS + 1):
                query = db.execute("SELECT ? * ?", (n, n))
                yield f"{query.fetchone()[0]}\n"
        finally:  # the end, an error, or the client gone
            db.close()
            app.logger.info("squares: connection closed")

    return Response(generate(), mimetype="text/plain")


# [recipe-end]

import logging  # noqa: E402

from flask import after_this_request, stream_with_context  # noqa: E402
from flask.sessions import SecureCookieSessionInterface  # noqa: E402

from snippets.checks import secret_key, whole_number  # noqa: E402

app.secret_key = secret_key()
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


# [record-end]


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


@app.get("/plain")
def plain():
    return respond(numbers(whole_number("n", 1, 1000, default=2)))


@app.get("/wrapped")
def wrapped():
    n = whole_number("n", 1, 1000, default=2)
    return respond(stream_with_context(numbers(n)))


# [routes-end]


from snippets import lifecycle_disconnect, lifecycle_teardown  # noqa: E402, F401
