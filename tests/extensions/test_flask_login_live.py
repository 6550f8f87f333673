"""extensions/flask_login over a real socket (Werkzeug's threaded server), and
on Flask 3.1.1 against the locked Flask (3.1.1 fetched from the package index
and run in a new interpreter, see ``run_on_flask`` in tests/servers.py)."""

import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from snippets.flask_login import app
from tests.flask_versions import run_on_flask

pytestmark = pytest.mark.live


def test_client_gets_200_and_a_body_cut_short(live_server):
    url = live_server(app)
    with httpx.Client(base_url=url, timeout=30) as client:
        client.post("/login/1").raise_for_status()
        with client.stream("GET", "/report-broken") as response:
            assert response.status_code == 200
            received = []
            with pytest.raises(httpx.RemoteProtocolError):
                for chunk in response.iter_raw():
                    received.append(chunk)
    assert b"".join(received) == b"Report\n"


def test_value_read_in_view_streams_whole_report(live_server):
    url = live_server(app)
    with httpx.Client(base_url=url, timeout=30) as client:
        client.post("/login/2").raise_for_status()
        body = client.get("/report").text
    assert body == "Report\nline 1 for Grace\nline 2 for Grace\nline 3 for Grace\n"


LOCKED = "3.1.3"
RELEASES = ["3.1.1", LOCKED]

PROBE = r"""
from importlib.metadata import version

from flask import Response, stream_with_context
from flask_login import current_user

from snippets.flask_login import app

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
"""


# A user loader that reads the user from Flask-SQLAlchemy, as most apps do.
PROBE_DB = r"""
import os

from flask import Flask, Response, stream_with_context
from flask_login import LoginManager, UserMixin, current_user, login_required
from flask_login import login_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

app = Flask(__name__)
app.secret_key = "test"
app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{os.environ['USERS_DB']}"
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
seen["/team"] = body
print(repr(seen))
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """Both probes in one interpreter per release; both releases at once."""

    def run(release):
        users = tmp_path_factory.mktemp(f"flask-{release}") / "users.sqlite3"
        seen = run_on_flask(release, PROBE + PROBE_DB, {"USERS_DB": str(users)})
        assert seen["flask"] == release
        return seen

    with ThreadPoolExecutor() as pool:
        runs = {release: pool.submit(run, release) for release in RELEASES}
        yield lambda release: runs[release].result()


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
        "Report\nline 1 for Grace\nline 2 for Grace\nline 3 for Grace\n",
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
    probe, release, body
):
    """current_user loaded by the view through Flask-SQLAlchemy: since 3.1.2
    its session is closed before the generator reads a lazy attribute."""
    seen = probe(release)["/team"]
    assert re.sub(r" at 0x[0-9a-f]+>", " at 0x...>", seen).startswith(body)
