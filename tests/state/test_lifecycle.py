"""The order of hooks, teardown and close: proof for docs/state/lifecycle.rst."""

import io
import sqlite3
import types
from importlib.metadata import version

import pytest
from flask import Flask, Response, after_this_request, g, request, stream_with_context
from werkzeug.test import EnvironBuilder

from snippets import lifecycle, lifecycle_teardown
from snippets.lifecycle import EVENTS
from snippets.lifecycle_disconnect import app
from snippets.lifecycle_teardown import app as teardown_app


@pytest.fixture
def events():
    EVENTS.clear()
    yield EVENTS
    EVENTS.clear()


def parse_version(text):
    return tuple(int(part) for part in text.split(".")[:3])


def test_teardown_runs_twice_with_stream_with_context_since_flask_3_1_2(events):
    assert parse_version(version("flask")) >= (3, 1, 2)
    with app.test_client().get("/wrapped") as response:
        response.get_data()
    assert events.count("teardown_request") == 2
    assert events.count("teardown_appcontext") == 2
    # once when the view returns, once when the generator ends
    assert events.index("teardown_request") < events.index("body starts")
    assert events[-3:] == ["teardown_request", "teardown_appcontext", "call_on_close"]


def test_teardown_runs_once_without_stream_with_context(events):
    with app.test_client().get("/plain") as response:
        response.get_data()
    assert events.count("teardown_request") == 1
    assert events.index("teardown_appcontext") < events.index("body starts")


def test_hooks_and_session_save_run_before_first_body_byte(events):
    with app.test_client().get("/wrapped?n=1000") as response:
        assert events.index("session saved") < events.index("body starts")
        assert events.index("after_this_request") < events.index("after_request")
        assert "body ends" not in events  # the body has only just started
        response.get_data()


def test_uploaded_file_parsed_in_view_is_closed_before_generator():
    """Flask 3.1.2+: the first teardown closes the request's files."""
    late = Flask(__name__)

    @late.post("/")
    def read_late():
        upload = request.files["data"]  # parsed in the view

        @stream_with_context
        def generate():
            yield upload.read()  # read after the view returned

        return Response(generate())

    with pytest.raises(ValueError, match="I/O operation on closed file"):
        late.test_client().post("/", data={"data": (io.BytesIO(b"x"), "x.txt")})


def test_upload_read_in_view_streams():
    client = teardown_app.test_client()
    data = {"data": (io.BytesIO(b"first\nsecond\n"), "lines.txt")}
    response = client.post("/upload", data=data)
    assert response.get_data() == b"FIRST\nSECOND\n"


def test_upload_without_file_is_400_and_oversized_is_413():
    client = teardown_app.test_client()
    response = client.post("/upload", data={})
    assert response.status_code == 400
    assert b"send the file in a multipart field named data" in response.data
    big = {"data": (io.BytesIO(b"x" * (2 * 1024 * 1024)), "big.txt")}
    assert client.post("/upload", data=big).status_code == 413


def test_connection_captured_in_view_is_closed_in_generator():
    with pytest.raises(Exception, match="Cannot operate on a closed database"):
        teardown_app.test_client().get("/db-captured")


def test_connection_fetched_in_generator_works_and_teardown_runs_twice(monkeypatch):
    runs = []
    funcs = [*teardown_app.teardown_appcontext_funcs, runs.append]
    monkeypatch.setattr(teardown_app, "teardown_appcontext_funcs", funcs)
    assert teardown_app.test_client().get("/db").get_data() == b"42\n"
    assert len(runs) == 2  # when the view returns, and after the last chunk


def test_non_idempotent_teardown_fails_at_end_of_stream():
    """A teardown written for one run raises on the second, after the last
    chunk: on a real server the body then ends without its terminator."""
    fragile = Flask(__name__)

    @fragile.teardown_appcontext
    def close_resource(exc):
        g.pop("resource")  # KeyError the second time

    @fragile.get("/")
    def index():
        g.resource = object()
        return Response(stream_with_context(iter(["a", "b"])))

    response = fragile.test_client().get("/")
    with pytest.raises(KeyError, match="resource"):
        response.get_data()


def test_closing_early_runs_finally_then_teardown_then_call_on_close(events):
    response = app.test_client().get("/wrapped?n=1000")
    response.close()
    assert events[events.index("body starts") :] == [
        "body starts",
        "generator finally",
        "teardown_request",
        "teardown_appcontext",
        "call_on_close",
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/plain?n=0", b"n must be a whole number from 1 to 1,000"),
        ("/wrapped?n=x", b"n must be a whole number from 1 to 1,000"),
        ("/wait?seconds=0&beat=yes", b"seconds must be a whole number from 1 to 30"),
        ("/wait?seconds=99&beat=yes", b"seconds must be a whole number from 1 to 30"),
        ("/wait?seconds=1&beat=maybe", b"beat must be yes or no"),
    ],
)
def test_bad_input_is_400_with_message(path, message):
    response = app.test_client().get(path)
    assert response.status_code == 400
    assert message in response.data


@pytest.mark.parametrize("path", ["/wrapped", "/plain"])
def test_head_request_never_starts_the_body_and_tears_down_once(events, path):
    """For HEAD, Werkzeug's Response sends no body: the generator never
    starts, so there is no finally and no second teardown; teardown runs once,
    when the view returns, then call_on_close."""
    with app.test_client().head(path) as response:
        assert response.data == b""
    assert events == [
        "view returns",
        "after_this_request",
        "after_request",
        "session saved",
        "teardown_request",
        "teardown_appcontext",
        "call_on_close",
    ]


def test_after_this_request_runs_before_the_first_body_byte():
    events = []
    app = Flask(__name__)

    @app.get("/")
    def view():
        @after_this_request
        def hook(response):
            events.append("after_this_request")
            return response

        def generate():
            events.append("first chunk")
            yield "body"

        events.append("view returns")
        return Response(generate())

    # At the WSGI level (the test client would pull the first chunk itself):
    # status and headers go to the server before it asks for any body.
    body = app(EnvironBuilder(path="/").get_environ(), lambda *args: None)
    assert events == ["view returns", "after_this_request"]
    assert b"".join(body) == b"body"
    assert events[-1] == "first chunk"
    body.close()


def test_stream_with_context_runs_teardown_before_the_first_chunk():
    """Flask 3.1.2+: the request context stays usable in the generator, but
    teardown_request already ran once when the view returned, so whatever a
    teardown closes is closed before the first chunk."""
    teardowns = []
    app = Flask(__name__)
    app.teardown_request(lambda error: teardowns.append("teardown"))

    @app.get("/")
    def view():
        from flask import request

        def generate():
            yield f"{request.path} teardowns so far: {len(teardowns)}\n"

        return Response(stream_with_context(generate()))

    response = app.test_client().get("/")
    assert response.get_data() == b"/ teardowns so far: 1\n"
    assert teardowns == ["teardown", "teardown"]


def test_connection_opened_in_generator_is_closed_by_second_teardown(monkeypatch):
    """lifecycle.rst: in /db the generator gets its own connection, and the
    second teardown (after the last chunk) closes it."""
    opened = []

    def connect(path):
        opened.append(sqlite3.connect(path))
        return opened[-1]

    monkeypatch.setattr(
        lifecycle_teardown, "sqlite3", types.SimpleNamespace(connect=connect)
    )
    response = teardown_app.test_client().get("/db")
    assert next(iter(response.response)) == b"42\n"
    assert len(opened) == 1
    opened[0].execute("SELECT 1")  # still open while the body runs
    response.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        opened[0].execute("SELECT 1")


def test_second_teardown_fails_after_the_last_chunk():
    """lifecycle.rst: a teardown that assumes it runs once fails after the
    last chunk, when the body can only be cut short."""
    fragile = Flask(__name__)

    @fragile.teardown_appcontext
    def close_resource(exc):
        g.pop("resource")

    @fragile.get("/")
    def index():
        g.resource = object()
        return Response(stream_with_context(iter(["a", "b"])))

    body = iter(fragile.test_client().get("/").response)
    assert [next(body), next(body)] == [b"a", b"b"]
    with pytest.raises(KeyError, match="resource"):
        next(body)


def test_recipe_closes_its_connection_when_the_stream_is_closed_early(monkeypatch):
    """The recipe opens its connection in the generator and closes it in
    ``finally``: closing the response after one row (what a server does when
    the client has gone) closes the connection."""
    opened = []

    def connect(path):
        opened.append(sqlite3.connect(path))
        return opened[-1]

    monkeypatch.setattr(lifecycle, "sqlite3", types.SimpleNamespace(connect=connect))
    response = lifecycle.app.test_client().get("/squares")
    assert next(iter(response.response)) == b"1\n"
    opened[0].execute("SELECT 1")  # open while the body runs
    response.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        opened[0].execute("SELECT 1")
