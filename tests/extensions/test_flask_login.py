"""extensions/flask_login: current_user inside a streaming generator, on
Flask 3.1.1 and on the locked Flask."""

import re

import pytest
from flask_login import current_user

from snippets.login_stream import app
from tests.servers import run_on_flask

LOCKED = "3.1.3"
RELEASES = ["3.1.1", LOCKED]

PROBE = r"""
from importlib.metadata import version

from flask import Response, stream_with_context
from flask_login import current_user

from snippets.login_stream import app

seen = {"flask": version("flask")}


@app.get("/no-login-required")
def no_login_required():  # the view never touches current_user
    @stream_with_context
    def generate():
        yield current_user.name

    return Response(generate())


client = app.test_client()
client.post("/login/2")
for path in ["/report-broken", "/report-wrapped", "/report", "/no-login-required"]:
    response = client.get(path)
    try:
        seen[path] = (response.status_code, response.get_data(as_text=True))
    except Exception as exc:
        seen[path] = (response.status_code, f"{type(exc).__name__}: {exc}")
print(repr(seen))
"""


# A user loader that reads the user from Flask-SQLAlchemy, as most apps do.
PROBE_DB = r"""
import sys
from importlib.metadata import version

from flask import Flask, Response, stream_with_context
from flask_login import LoginManager, UserMixin, current_user, login_required
from flask_login import login_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

app = Flask(__name__)
app.secret_key = "test"
app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{sys.argv[1]}"
db = SQLAlchemy(app)
login_manager = LoginManager(app)


class Team(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class User(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    team_id: Mapped[int] = mapped_column(ForeignKey("team.id"))
    team: Mapped[Team] = relationship()  # lazy


@login_manager.user_loader
def load_user(user_id):
    return db.session.get(User, int(user_id))


@app.post("/login")
def login():
    login_user(db.session.get(User, 1))
    return "ok"


@app.get("/team")
@login_required
def team():
    @stream_with_context
    def generate():
        yield current_user.name + " "
        yield current_user.team.name

    return Response(generate())


with app.app_context():
    db.create_all()
    db.session.add(User(id=1, name="Ada", team=Team(id=1, name="Engines")))
    db.session.commit()
client = app.test_client()
client.post("/login")
response = client.get("/team")
try:
    body = response.get_data(as_text=True)
except Exception as exc:
    body = f"{type(exc).__name__}: {exc}"
print(repr((version("flask"), body)))
"""


@pytest.fixture(scope="module")
def probe():
    runs = {}

    def run(release):
        if release not in runs:
            runs[release] = run_on_flask(release, PROBE)
            assert runs[release]["flask"] == release
        return runs[release]

    return run


@pytest.mark.parametrize("release", RELEASES)
def test_current_user_in_plain_generator_is_none_on_both(probe, release):
    """The status is 200 and the first line is out; then current_user.name
    fails as if the user were None."""
    assert probe(release)["/report-broken"] == (
        200,
        "AttributeError: 'NoneType' object has no attribute 'name'",
    )


@pytest.mark.parametrize("release", RELEASES)
def test_current_user_with_stream_with_context_works_on_both(probe, release):
    seen = probe(release)
    assert seen["/report-wrapped"] == (
        200,
        "Report\nline 1 for Grace\nline 2 for Grace\n",
    )
    # Also when the view never loaded the user: the generator loads it.
    assert seen["/no-login-required"] == (200, "Grace")


@pytest.mark.parametrize("release", RELEASES)
def test_value_read_in_view_works_on_both(probe, release):
    assert probe(release)["/report"] == (
        200,
        "Report\nline 1 for Grace\nline 2 for Grace\n",
    )


@pytest.mark.parametrize(
    ("release", "body"),
    [
        ("3.1.1", "Ada Engines"),
        (LOCKED, "DetachedInstanceError: Parent instance <User at 0x...> is not"
         " bound to a Session; lazy load operation of attribute 'team' cannot"
         " proceed"),
    ],
)  # fmt: skip
def test_database_user_in_wrapped_generator_is_detached_since_3_1_2(
    tmp_path, release, body
):
    """current_user loaded by the view through Flask-SQLAlchemy: since 3.1.2
    its session is closed before the generator reads a lazy attribute."""
    script = PROBE_DB.replace("sys.argv[1]", repr(str(tmp_path / "users.sqlite3")))
    flask, seen = run_on_flask(release, script)
    assert flask == release
    assert re.sub(r" at 0x[0-9a-f]+>", " at 0x...>", seen).startswith(body)


def test_outside_a_request_current_user_is_a_proxy_to_none():
    """Why the error reads so strangely: Flask-Login returns None, where
    request would raise 'Working outside of request context'."""
    assert not current_user
    assert current_user == None  # noqa: E711 the proxy compares as None
    assert current_user is not None  # ... but it is a LocalProxy
    with pytest.raises(AttributeError, match="'NoneType' object has no attr"):
        current_user.is_authenticated  # noqa: B018


def test_broken_report_sends_first_line_then_fails():
    client = app.test_client()
    client.post("/login/1")
    response = client.get("/report-broken")
    assert response.status_code == 200
    assert next(response.response) == b"Report\n"
    with pytest.raises(AttributeError, match="'NoneType' object has no attr"):
        next(response.response)
    response.close()


@pytest.mark.parametrize(
    ("path", "status"),
    [("/report", 401), ("/report-wrapped", 401), ("/report-broken", 401)],
)
def test_anonymous_gets_401_before_the_stream(path, status):
    assert app.test_client().get(path).status_code == status


@pytest.mark.parametrize(
    "lines", ["0", "1001", "x", "", pytest.param("9" * 5000, id="huge")]
)
def test_bad_lines_are_refused(lines):
    client = app.test_client()
    client.post("/login/1")
    response = client.get(f"/report?lines={lines}")
    assert response.status_code == 400
    assert b"lines must be a whole number from 1 to 1,000" in response.data


def test_unknown_user_cannot_log_in():
    assert app.test_client().post("/login/9").status_code == 404
