"""Sessions and streamed responses: proof for docs/state/sessions.rst."""

import base64
import json
import logging
import warnings

import pytest
from cachelib import FileSystemCache
from flask import Flask, Response, session, stream_with_context
from flask.sessions import SecureCookieSessionInterface, SessionInterface
from flask_session import Session
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm import scoped_session
from werkzeug.test import EnvironBuilder

from snippets import sessions_rules as session_stream
from snippets.sessions import app as report_app
from snippets.sessions_rules import app, server_side_app


def test_view_session_change_is_saved():
    client = app.test_client()
    response = client.get("/saved")
    assert response.get_data() == b"export started\n"
    assert response.headers["Set-Cookie"].startswith("session=")
    assert client.get("/session").json == {"exports": 1}


def test_generator_session_change_is_lost():
    client = app.test_client()
    response = client.get("/lost")
    assert response.get_data() == b"working\ndone\n"  # the generator ran to the end
    assert "Set-Cookie" not in response.headers
    assert client.get_cookie("session") is None  # nothing was ever stored
    assert client.get("/session").json == {}


def test_hook_runs_before_first_body_byte():
    """At the WSGI level: the server receives the status and the headers,
    including the cookie the hook wrote, before it asks for any body byte."""
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["headers"] = dict(headers)

    environ = EnvironBuilder(path="/hook").get_environ()
    body = app(environ, start_response)
    try:
        assert "session=" in seen["headers"]["Set-Cookie"]  # before next(body)
        assert next(iter(body)) == b"the hook has already run: True\n"
    finally:
        body.close()


def test_session_read_only_in_generator_has_no_vary_cookie():
    client = app.test_client()
    client.get("/saved")
    late, early = client.get("/greet-late"), client.get("/greet")
    assert late.get_data() == early.get_data() == b"exports so far: 1\n"
    assert "Vary" not in late.headers
    assert early.headers["Vary"] == "Cookie"


def test_report_outcome_survives_in_server_side_store():
    client = report_app.test_client()
    assert client.get("/report").get_data().count(b"\n") == 100
    assert client.get("/report/last").json["state"] == "complete: 100 lines"


def test_report_closed_early_records_where_it_stopped():
    client = report_app.test_client()
    response = client.get("/report")
    body = iter(response.response)
    assert [next(body), next(body)] == [b"line 1\n", b"line 2\n"]
    response.close()
    assert client.get("/report/last").json["state"] == "stopped at line 2"


def test_report_id_goes_out_with_the_headers_before_the_body():
    """The recipe's only session change is in the view: the server receives
    the cookie with the status line, before it asks for the first line."""
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["headers"] = dict(headers)

    body = report_app(EnvironBuilder(path="/report").get_environ(), start_response)
    try:
        assert "session=" in seen["headers"]["Set-Cookie"]  # before next(body)
        assert next(iter(body)) == b"line 1\n"
    finally:
        body.close()


def test_unknown_report_id_is_404():
    client = report_app.test_client()
    assert client.get("/report/last").status_code == 404
    with client.session_transaction() as session:
        session["run_id"] = "no-such-run"
    response = client.get("/report/last")
    assert response.status_code == 404
    assert b"this report is no longer stored" in response.data


def test_server_side_store_is_not_updated_by_generator():
    client = server_side_app.test_client()
    client.get("/saved")
    sid = client.get_cookie("session").value
    interface = server_side_app.session_interface
    store = server_side_app.config["SESSION_CACHELIB"]
    key = interface.key_prefix + sid
    assert store.get(key) == {"_permanent": True, "exports": 1}
    assert client.get("/lost").get_data() == b"working\ndone\n"
    assert store.get(key) == {"_permanent": True, "exports": 1}  # no "finished"
    client.get("/hook")
    assert store.get(key)["hooked"] is True  # a hook's change is stored


def test_generator_session_without_wrapper_raises():
    bare = Flask(__name__)
    bare.secret_key = "test"

    @bare.get("/")
    def index():
        def generate():
            yield "working\n"
            session["finished"] = True

        return Response(generate())

    response = bare.test_client().get("/")
    with pytest.raises(RuntimeError, match="Working outside of request context"):
        response.get_data()


def test_generator_session_change_before_its_first_yield_is_lost():
    """Status, headers and the session cookie are fixed when the view
    returns (process_response), not when the first byte is sent: a change
    the generator makes before it yields anything is already too late."""
    demo = Flask(__name__)
    demo.secret_key = "test only"

    @demo.get("/")
    def view():
        @stream_with_context
        def generate():
            session["seen"] = True  # before the first yield
            yield "body\n"

        return Response(generate())

    @demo.get("/seen")
    def seen():
        return {"seen": session.get("seen", False)}

    client = demo.test_client()
    environ = EnvironBuilder(path="/").get_environ()
    headers = {}
    body = demo(environ, lambda status, sent, exc_info=None: headers.update(sent))
    try:
        assert "Set-Cookie" not in headers  # fixed before next(body)
        assert next(iter(body)) == b"body\n"  # the change has now been made
    finally:
        body.close()
    response = client.get("/")
    assert response.get_data() == b"body\n"
    assert "Set-Cookie" not in response.headers
    assert client.get("/seen").json == {"seen": False}


def test_default_session_lives_in_the_signed_cookie():
    """Flask's own session storage is the cookie: no database involved."""
    app = Flask(__name__)
    app.secret_key = "test only"

    @app.get("/")
    def view():
        session["cart"] = [1, 2]
        return "ok"

    assert type(app.session_interface) is SecureCookieSessionInterface
    client = app.test_client()
    client.get("/")
    payload = client.get_cookie("session").value.split(".")[0]
    assert json.loads(base64.urlsafe_b64decode(payload + "==")) == {"cart": [1, 2]}


def test_sqlalchemy_session_is_a_database_session_not_a_session_interface():
    """Flask-SQLAlchemy's ``db.session`` is a SQLAlchemy ``scoped_session``:
    a registry that hands each app context its own SQLAlchemy ``Session``, a
    unit of work on a database connection. Neither has a cookie, a request,
    or the methods Flask calls to load and save :data:`flask.session`."""
    demo = Flask(__name__)
    demo.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db = SQLAlchemy(demo)
    with demo.app_context():
        assert isinstance(db.session, scoped_session)
        assert isinstance(db.session(), OrmSession)
        for unit in (db.session, db.session()):
            assert not isinstance(unit, SessionInterface)
            assert not hasattr(unit, "open_session")
            assert not hasattr(unit, "save_session")
            assert all(hasattr(unit, name) for name in ("add", "commit", "execute"))


def test_lost_session_change_logs_and_warns_nothing(caplog):
    """sessions.rst: "Nothing in the logs, no exception"."""
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        response = session_stream.app.test_client().get("/lost")
        assert response.get_data() == b"working\ndone\n"
    assert caplog.records == []


@pytest.mark.parametrize(("refresh", "set_cookie"), [(True, True), (False, False)])
def test_flask_session_refresh_each_request_sets_the_cookie(
    tmp_path, refresh, set_cookie
):
    """sessions.rst: with SESSION_REFRESH_EACH_REQUEST (True by default),
    Flask-Session 0.8 sends Set-Cookie on every response of a session."""
    app = Flask(__name__)
    app.secret_key = "test only"
    app.config.update(
        SESSION_TYPE="cachelib",
        SESSION_CACHELIB=FileSystemCache(str(tmp_path)),
        SESSION_REFRESH_EACH_REQUEST=refresh,
    )
    Session(app)
    app.register_blueprint(session_stream.bp)
    client = app.test_client()
    client.get("/saved")
    response = client.get("/lost")
    assert response.get_data() == b"working\ndone\n"
    assert ("Set-Cookie" in response.headers) is set_cookie
