# [recipe]
import itertools
import os
import tempfile
import time

from flask import Flask, Response
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

app = Flask(__name__)
DB_FILE = os.path.join(tempfile.gettempdir(), "lifetime.db")
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get(
    "DATABASE_URL", f"sqlite:///{DB_FILE}"
)
db = SQLAlchemy(app)
MAX_SECONDS = float(os.environ.get("LIFETIME_MAX_SECONDS", 600))
INTERVAL = 0.05  # seconds between two lines


@app.get("/ticks")
def ticks():
    def generate():
        deadline = time.monotonic() + MAX_SECONDS
        for n in itertools.count():
            if time.monotonic() > deadline:
                return  # ends even if nobody closes it
            # The context is pushed for the query only: its
            # teardown returns the connection before the yield.
            with app.app_context():
                now = db.session.scalar(text("select 1"))
            yield f"{n} {now}\n"
            time.sleep(INTERVAL)

    return Response(generate(), mimetype="text/plain")


# [recipe-end]

import threading  # noqa: E402

from flask import g, stream_with_context  # noqa: E402

TEARDOWNS = []  # the threads teardown_appcontext ran on
TICKS = {"leaky": 0, "ticks": 0}


@app.teardown_appcontext
def count_teardown(error):
    TEARDOWNS.append(threading.get_ident())


# [leaky]
@app.get("/leaky")
def leaky():
    g.user = "the streaming request"

    @stream_with_context
    def generate():
        for n in itertools.count():  # endless: only a close stops it
            db.session.scalar(text("select 1"))
            TICKS["leaky"] = n
            yield f"{n}\n"
            time.sleep(INTERVAL)

    return Response(generate(), mimetype="text/plain")


# [leaky-end]


@app.get("/state")
def state():
    """What this request sees of earlier ones."""
    return {
        "stale_g": g.get("user"),
        "teardowns": len(TEARDOWNS),
        "checked_out": db.engine.pool.checkedout(),
        "leaky_ticks": TICKS["leaky"],
    }
