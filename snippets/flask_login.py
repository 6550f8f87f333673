"""Flask-Login's current_user in a stream: read it in the view."""

from flask import Flask, Response, abort, request, stream_with_context
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
)

from snippets.checks import secret_key

app = Flask(__name__)
app.secret_key = secret_key()
login_manager = LoginManager(app)


class User(UserMixin):
    def __init__(self, id, name):
        self.id, self.name = id, name


USERS = {"1": User("1", "Ada"), "2": User("2", "Grace")}


@login_manager.user_loader
def load_user(user_id):
    return USERS.get(user_id)


@app.post("/login/<user_id>")
def login(user_id):
    user = USERS.get(user_id) or abort(404, "no such user")
    login_user(user)
    return f"logged in as {user.name}\n"


def lines_arg():
    raw = request.args.get("lines", "2")
    try:
        lines = int(raw)
    except ValueError:
        abort(400, "lines must be a whole number from 1 to 1,000")
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= lines <= 1000:
        abort(400, "lines must be a whole number from 1 to 1,000")
    return lines


# [broken]
@app.get("/report-broken")
@login_required
def report_broken():
    def generate(lines):
        yield "Report\n"
        for n in range(1, lines + 1):
            yield f"line {n} for {current_user.name}\n"  # no request here

    return Response(generate(lines_arg()), mimetype="text/plain")


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

    return Response(generate(lines_arg()), mimetype="text/plain")


# [wrapped-end]


# [passed]
@app.get("/report")
@login_required
def report():
    lines, name = lines_arg(), current_user.name  # read in the view

    def generate(lines, name):
        yield "Report\n"
        for n in range(1, lines + 1):
            yield f"line {n} for {name}\n"

    return Response(generate(lines, name), mimetype="text/plain")


# [passed-end]
