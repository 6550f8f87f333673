"""Flask-Login's current_user in a stream: read it in the view."""

# [recipe]
import os

from flask import Flask, Response, abort
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
)

app = Flask(__name__)
app.secret_key = os.environ["FLASK_SECRET_KEY"]
login_manager = LoginManager(app)
LINES = 3


class User(UserMixin):
    def __init__(self, id, name):
        self.id, self.name = id, name


USERS = {"1": User("1", "Ada"), "2": User("2", "Grace")}


@login_manager.user_loader
def load_user(user_id):
    return USERS.get(user_id)


@app.get("/report")
@login_required
def report():
    name = current_user.name  # read in the view

    def generate():
        yield "Report\n"
        for n in range(1, LINES + 1):
            yield f"line {n} for {name}\n"

    return Response(generate(), mimetype="text/plain")


@app.post("/login/<user_id>")
def login(user_id):
    user = USERS.get(user_id) or abort(404, "no such user")
    login_user(user)
    return f"logged in as {user.name}\n"


# [recipe-end]

from flask import stream_with_context  # noqa: E402  (the variants below)

from snippets.checks import whole_number  # noqa: E402


# [broken]
@app.get("/report-broken")
@login_required
def report_broken():
    def generate(lines):
        yield "Report\n"
        for n in range(1, lines + 1):
            yield f"line {n} for {current_user.name}\n"  # no request here

    lines = whole_number("lines", 1, 1000, default=2)
    return Response(generate(lines), mimetype="text/plain")


# [broken-end]


# [wrapped]
@app.get("/report-wrapped")
@login_required
def report_wrapped():
    @stream_with_context
    def generate(lines):
        yield "Report\n"
        for n in range(1, lines + 1):
            yield f"line {n} for {current_user.name}\n"

    lines = whole_number("lines", 1, 1000, default=2)
    return Response(generate(lines), mimetype="text/plain")


# [wrapped-end]
