"""Sessions and streamed responses: what is saved and what is lost, with
Flask's cookie session (``app``) and with Flask-Session (``server_side_app``)."""

import os
import tempfile

from cachelib import FileSystemCache
from flask import (
    Blueprint,
    Flask,
    Response,
    after_this_request,
    session,
    stream_with_context,
)
from flask_session import Session

from snippets.checks import secret_key

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


app = Flask(__name__)
app.secret_key = secret_key()
app.register_blueprint(bp)

# [server-side]
server_side_app = Flask(__name__)
server_side_app.secret_key = secret_key()
server_side_app.config.update(
    SESSION_TYPE="cachelib",
    SESSION_CACHELIB=FileSystemCache(
        os.path.join(tempfile.gettempdir(), "fsp-flask-session"), threshold=500
    ),
)
Session(server_side_app)
server_side_app.register_blueprint(bp)
# [server-side-end]
