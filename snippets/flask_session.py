"""Flask-Session with Redis and a streamed response: change the session in
the view; let the generator write its outcome under a key of its own."""

# [recipe]
import os
import uuid

from flask import Flask, Response, abort, session
from flask_session import Session
from redis import Redis

app = Flask(__name__)
app.secret_key = os.environ["FLASK_SECRET_KEY"]
store = Redis.from_url(os.environ.get("SESSION_STORE", "redis://127.0.0.1:6379/0"))
app.config.update(SESSION_TYPE="redis", SESSION_REDIS=store)
Session(app)
LINES = 3
KEEP_SECONDS = 24 * 60 * 60  # how long an outcome is kept


@app.get("/export")
def export():
    key = f"export:{uuid.uuid4().hex}"
    session["last_export"] = key  # in the view: saved

    def generate():
        try:
            for number in range(1, LINES + 1):
                state = f"stopped at line {number}"
                yield f"line {number}\n"
            state = f"complete: {LINES} lines"
        finally:  # its own key, not the session
            store.set(key, state, ex=KEEP_SECONDS)

    return Response(generate(), mimetype="text/plain")


@app.get("/export/last")
def last_export():
    key = session.get("last_export")
    state = key and store.get(key)
    if not state:
        abort(404, "no finished export in this session")
    return {"key": key, "state": state.decode()}


# [recipe-end]
