"""Small, focused proofs for the claims on docs/myths.rst that no other page
settles (yet). Each test name states the verdict."""

import base64
import json
import random
import string
import tracemalloc
import zlib

import pytest
from flask import Flask, Response, after_this_request, session, stream_with_context
from flask.sessions import SecureCookieSessionInterface, SessionInterface
from flask_compress import Compress
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import String, create_engine, insert
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    scoped_session,
)
from werkzeug.test import EnvironBuilder


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
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db = SQLAlchemy(app)
    with app.app_context():
        assert isinstance(db.session, scoped_session)
        assert isinstance(db.session(), Session)
        for unit in (db.session, db.session()):
            assert not isinstance(unit, SessionInterface)
            assert not hasattr(unit, "open_session")
            assert not hasattr(unit, "save_session")
            assert all(hasattr(unit, name) for name in ("add", "commit", "execute"))


def test_exception_mid_stream_keeps_200_and_skips_the_errorhandler():
    handled = []
    app = Flask(__name__)

    @app.errorhandler(Exception)
    def on_error(error):
        handled.append(error)
        return "something went wrong", 500

    @app.get("/")
    def view():
        def generate():
            yield "row 1\n"
            raise ValueError("row 2 is broken")

        return Response(generate(), mimetype="text/plain")

    response = app.test_client().get("/")
    assert response.status_code == 200  # decided before the first byte
    body = iter(response.response)
    assert next(body) == b"row 1\n"
    with pytest.raises(ValueError, match="row 2 is broken"):
        next(body)
    assert handled == []  # the status and headers are gone: nothing to replace


def compressed_stream(chunks):
    """Flask-Compress over a generator of ``chunks``; yields (how many chunks
    the generator had made, the text decodable so far) per piece received."""
    produced = []
    app = Flask(__name__)
    Compress(app)

    @app.get("/")
    def view():
        def generate():
            for chunk in chunks:
                produced.append(chunk)
                yield chunk

        return Response(generate(), mimetype="text/plain")

    response = app.test_client().get("/", headers={"Accept-Encoding": "deflate"})
    assert response.headers["Content-Encoding"] == "deflate"
    decoder = zlib.decompressobj()
    for piece in response.response:
        yield len(produced), decoder.decompress(piece)


def test_compression_middleware_holds_small_yields_until_the_end():
    """Flask-Compress (1.25) compresses streams chunk by chunk, but never
    flushes: five short lines are all held until the generator ends."""
    readable = list(compressed_stream([f"line {i}\n" for i in range(5)]))
    assert all(text == b"" for _, text in readable[:-1])  # bytes, no content
    assert readable[-1] == (5, b"line 0\nline 1\nline 2\nline 3\nline 4\n")


def test_compression_middleware_passes_output_once_its_buffer_fills():
    """It never flushes, but zlib emits what fills its buffers: five 64 KiB
    chunks of text that does not compress well, and decodable text reaches
    the client before the generator has made the last one."""
    rng = random.Random(7)
    chunks = ["".join(rng.choices(string.ascii_letters, k=64 * 1024)) for _ in range(5)]
    readable = list(compressed_stream(chunks))
    early = [text for made, text in readable if made < 5 and text]
    assert early, readable
    assert b"".join(text for _, text in readable) == "".join(chunks).encode()


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


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


def peak_memory_at_first_chunk_and_end(rows):
    """tracemalloc peaks (bytes) when the first chunk exists, and at the end."""
    tracemalloc.start()
    try:
        next(rows)
        at_first_chunk = tracemalloc.get_traced_memory()[1]
        for _ in rows:
            pass
        return at_first_chunk, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_query_all_loads_every_row_before_the_first_chunk(tmp_path):
    """``Query.all()`` (what ``Model.query.all()`` calls) builds the whole list
    before the generator yields once; ``yield_per`` keeps memory flat."""
    engine = create_engine(f"sqlite:///{tmp_path / 'items.sqlite3'}")
    Base.metadata.create_all(engine)
    with Session(engine) as db:
        db.execute(insert(Item), [{"name": f"item {i:06d}"} for i in range(20_000)])
        db.commit()

    def with_all(db):
        for item in db.query(Item).all():
            yield f"{item.id},{item.name}\n"

    def with_yield_per(db):
        for item in db.query(Item).yield_per(500):
            yield f"{item.id},{item.name}\n"

    with Session(engine) as db:
        all_first, all_end = peak_memory_at_first_chunk_and_end(with_all(db))
    with Session(engine) as db:
        _, streamed_end = peak_memory_at_first_chunk_and_end(with_yield_per(db))
    engine.dispose()
    assert all_first == all_end  # the peak is reached before the first chunk
    assert all_first > 10 * streamed_end
