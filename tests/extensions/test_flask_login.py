"""extensions/flask_login: current_user inside a streaming generator, on
Flask 3.1.1 and on the locked Flask."""

import os
import subprocess
import sys

import pytest
from flask import Flask
from flask_login import current_user

from snippets.flask_login import app
from tests.servers import ROOT, server_env

# The key snippets/flask_login.py used before it read FLASK_SECRET_KEY.
OLD_LITERAL_KEY = "dev only: set a real secret key in production"


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
    response = client.get(f"/report-wrapped?lines={lines}")
    assert response.status_code == 400
    assert b"lines must be a whole number from 1 to 1,000" in response.data


def test_unknown_user_cannot_log_in():
    assert app.test_client().post("/login/9").status_code == 404


def forged_cookie(key):
    """A session cookie that says "user 1 is logged in", signed with ``key``
    the way Flask signs its own."""
    forger = Flask(__name__)
    forger.secret_key = key
    serializer = forger.session_interface.get_signing_serializer(forger)
    return serializer.dumps({"_user_id": "1", "_fresh": True})


def test_a_cookie_forged_with_the_old_literal_key_does_not_log_in():
    """The same forged cookie, signed with the app's real key, does log in:
    the forgery is right, only the key is unknown."""
    client = app.test_client()
    client.set_cookie("session", forged_cookie(OLD_LITERAL_KEY))
    assert client.get("/report").status_code == 401
    client.set_cookie("session", forged_cookie(app.secret_key))
    assert (
        client.get("/report")
        .get_data(as_text=True)
        .startswith("Report\nline 1 for Ada")
    )


def test_the_app_refuses_to_start_without_flask_secret_key():
    env = {k: v for k, v in server_env().items() if k != "FLASK_SECRET_KEY"}
    done = subprocess.run(
        [sys.executable, "-c", "import snippets.flask_login"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().endswith("KeyError: 'FLASK_SECRET_KEY'")
    assert app.secret_key == os.environ["FLASK_SECRET_KEY"]


def test_report_reads_the_user_in_the_view_and_streams_three_lines():
    client = app.test_client()
    client.post("/login/2")
    response = client.get("/report")
    assert response.is_streamed
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == (
        "Report\nline 1 for Grace\nline 2 for Grace\nline 3 for Grace\n"
    )


@pytest.mark.parametrize("path", ["/report", "/report-wrapped", "/report-broken"])
def test_head_on_every_route_is_answered_like_get(path):
    client = app.test_client()
    assert client.head(path).status_code == 401
    client.post("/login/1")
    head = client.head(path)
    assert (head.status_code, head.data, head.mimetype) == (200, b"", "text/plain")
