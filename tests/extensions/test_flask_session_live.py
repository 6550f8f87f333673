"""Flask-Session with a real redis-server and a real memcached: proof for
docs/extensions/flask_session.rst. Each test reads the store back directly."""

import re
import threading

import httpx
import msgspec
import pytest
from flask import Response, current_app, session, stream_with_context
from pymemcache import Client
from redis import Redis
from werkzeug.test import EnvironBuilder

from snippets.flask_session_stores import create_app
from tests.servers import memcached, redis_server, werkzeug_server

pytestmark = pytest.mark.live

MONTH = 31 * 24 * 60 * 60  # Flask's PERMANENT_SESSION_LIFETIME, in seconds
COOKIE = re.compile(
    r"session=(?P<sid>[A-Za-z0-9_-]{43}); Expires=[^;]+ GMT; HttpOnly; Path=/"
)


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture(scope="module")
def memcached_address():
    with memcached() as address:
        yield address


class RawStore:
    """Reads what Flask-Session wrote, with a client of the test's own."""

    def __init__(self, kind, url):
        self.kind = kind
        if kind == "redis":
            self.client = Redis.from_url(url)
        else:
            self.client = Client(url.removeprefix("memcached://"))

    def get(self, key):
        value = self.client.get(key)
        return None if value is None else msgspec.msgpack.decode(value)

    def ttl(self, key):
        if self.kind == "redis":
            return self.client.ttl(key)
        # memcached 1.6's meta get: "VA <size> t<seconds left>"
        reply = self.client.raw_command(f"mg {key} t v".encode(), b"\r\n")
        return int(reply.split()[2][1:])

    def count(self):
        if self.kind == "redis":
            return self.client.dbsize()
        return int(self.client.stats()[b"curr_items"])


@pytest.fixture(params=["redis", "memcached"])
def store(request, redis_url, memcached_address):
    """(the snippet's app on this store, a raw reader of the store)."""
    memcached_url = f"memcached://{memcached_address}"
    url = redis_url if request.param == "redis" else memcached_url
    return create_app(url), RawStore(request.param, url)


def sid_of(response):
    match = COOKIE.fullmatch(response.headers["Set-Cookie"])
    assert match, response.headers["Set-Cookie"]
    return match["sid"]


def test_view_change_is_stored_before_the_first_body_byte(store):
    """save_session runs in process_response: the store holds the change, and
    the server has the Set-Cookie header, before it asks for a body byte."""
    app, raw = store
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["headers"] = dict(headers)

    body = app(EnvironBuilder(path="/in-view").get_environ(), start_response)
    try:
        sid = COOKIE.fullmatch(seen["headers"]["Set-Cookie"])["sid"]
        assert raw.get(f"session:{sid}") == {"_permanent": True, "exports": 1}
        assert next(iter(body)) == b"export 1 started\n"  # only now
    finally:
        body.close()


def test_view_change_sets_the_cookie_and_the_store(store):
    app, raw = store
    client = app.test_client()
    response = client.get("/in-view")
    assert response.get_data() == b"export 1 started\n"
    sid = sid_of(response)  # a random id, not the data
    assert response.headers["Vary"] == "Cookie"
    assert raw.get(f"session:{sid}") == {"_permanent": True, "exports": 1}
    assert MONTH - 5 <= raw.ttl(f"session:{sid}") <= MONTH + 1  # memcached rounds up
    assert client.get("/session").json == {"_permanent": True, "exports": 1}


def test_generator_change_in_a_new_session_stores_nothing(store):
    """No cookie yet: the empty session is not saved, the generator's change
    comes too late, and no key is written at all."""
    app, raw = store
    before = raw.count()
    client = app.test_client()
    response = client.get("/in-generator")
    assert response.get_data() == b"working\ndone\n"  # the generator ran to the end
    assert "Set-Cookie" not in response.headers
    assert "Vary" not in response.headers
    assert raw.count() == before
    assert client.get("/session").json == {"_permanent": True}


def test_generator_change_in_an_existing_session_is_lost(store):
    """With a session: Set-Cookie again (SESSION_REFRESH_EACH_REQUEST), the
    same id, and the store rewritten with what the view saw."""
    app, raw = store
    client = app.test_client()
    sid = sid_of(client.get("/in-view"))
    response = client.get("/in-generator")
    assert response.get_data() == b"working\ndone\n"
    assert sid_of(response) == sid
    assert raw.get(f"session:{sid}") == {"_permanent": True, "exports": 1}
    assert client.get("/session").json == {"_permanent": True, "exports": 1}


def test_generator_writes_its_outcome_under_a_key_from_the_view(store):
    app, raw = store
    client = app.test_client()
    assert client.get("/export?lines=2").get_data() == b"line 1\nline 2\n"
    last = client.get("/export/last").json
    assert last["state"] == "complete: 2 lines"
    assert raw.client.get(last["key"]) == b"complete: 2 lines"
    assert 24 * 3600 - 5 <= raw.ttl(last["key"]) <= 24 * 3600 + 1
    response = client.get("/export?lines=1000")  # a client that goes away
    assert next(iter(response.response)) == b"line 1\n"
    response.close()
    assert client.get("/export/last").json["state"] == "stopped at line 1"


def test_saving_the_session_again_in_the_generator_undoes_a_logout(redis_url):
    """The tempting fix, save_session() called at the end of the stream,
    writes the stream's old copy of the session back over whatever happened
    meanwhile: here a logout, so the old session id works again."""
    app = create_app(redis_url)
    raw = RawStore("redis", redis_url)
    logged_out = threading.Event()

    @app.get("/resave")
    def resave():
        @stream_with_context
        def generate():
            yield "started\n"
            assert logged_out.wait(10)
            session["finished"] = True
            interface = current_app.session_interface
            interface.save_session(current_app, session, Response())  # don't
            yield "saved\n"

        return Response(generate(), mimetype="text/plain")

    @app.post("/logout")
    def logout():
        session.clear()
        return "bye\n"

    with werkzeug_server(app) as url, httpx.Client(base_url=url) as http:
        sid = sid_of(http.get("/in-view"))
        cookies = {"session": sid}
        with http.stream("GET", "/resave", cookies=cookies) as stream:
            lines = stream.iter_lines()
            assert next(lines) == "started"
            with httpx.Client(base_url=url, cookies=cookies) as other_tab:
                assert other_tab.post("/logout").status_code == 200
            assert raw.get(f"session:{sid}") is None  # logged out
            logged_out.set()
            assert list(lines) == ["saved"]
        assert raw.get(f"session:{sid}") == {
            "_permanent": True,
            "exports": 1,
            "finished": True,
        }  # back again


@pytest.fixture
def big_session_route():
    def add(app):
        @app.get("/big")
        def big():
            session["blob"] = "x" * 2_000_000  # over memcached's 1 MB item limit
            return "ok\n"

        return app

    return add


def test_memcached_drops_an_oversized_session_silently_by_default(
    memcached_address, big_session_route
):
    """The client Flask-Session makes itself is pymemcache's Client, whose
    writes are noreply: memcached refuses the item, removes the old one, and
    nobody hears about it. The response is a 200 with a Set-Cookie."""
    app = create_app(f"memcached://{memcached_address}")
    app.session_interface.client = Client(memcached_address)  # the kind it makes
    big_session_route(app)
    raw = RawStore("memcached", memcached_address)
    client = app.test_client()
    sid = sid_of(client.get("/in-view"))
    response = client.get("/big")
    assert response.status_code == 200
    assert sid_of(response) == sid
    # Nothing waited for memcached: its answer to a later command on the same
    # connection comes only once it has handled the write (memcached runs one
    # connection's commands in order). Asked at once on another connection,
    # it once still had the old session.
    app.session_interface.client.version()
    assert raw.get(f"session:{sid}") is None  # the whole session is gone
    assert client.get("/session").json == {"_permanent": True}


def test_snippet_memcached_client_turns_the_refusal_into_a_500(
    memcached_address, big_session_route
):
    """default_noreply=False: the same write raises, before the body, so the
    user gets a 500 instead of a 200 that lost their session."""
    app = big_session_route(create_app(f"memcached://{memcached_address}"))
    raw = RawStore("memcached", memcached_address)
    client = app.test_client()
    sid = sid_of(client.get("/in-view"))
    response = client.get("/big")
    assert response.status_code == 500
    assert raw.get(f"session:{sid}") is None  # memcached removed the old item


def test_redis_keeps_the_same_big_session(redis_url, big_session_route):
    app = big_session_route(create_app(redis_url))
    raw = RawStore("redis", redis_url)
    client = app.test_client()
    sid = sid_of(client.get("/in-view"))
    assert client.get("/big").status_code == 200
    assert len(raw.get(f"session:{sid}")["blob"]) == 2_000_000


# --- the page's recipe: snippets/flask_session.py -----------------------------


@pytest.fixture
def recipe(redis_url, monkeypatch):
    """The recipe's app, with its store (and Flask-Session's client, made
    from the same URL at import) pointed at this test's redis-server."""
    import snippets.flask_session as recipe

    client = Redis.from_url(redis_url)
    monkeypatch.setattr(recipe, "store", client)
    monkeypatch.setattr(recipe.app.session_interface, "client", client)
    return recipe


def test_recipe_keeps_the_key_from_the_view_and_the_outcome_from_the_generator(
    recipe, redis_url
):
    raw = RawStore("redis", redis_url)
    client = recipe.app.test_client()
    assert client.get("/export/last").status_code == 404  # nothing yet
    response = client.get("/export")
    assert response.mimetype == "text/plain"
    assert response.get_data() == b"line 1\nline 2\nline 3\n"
    sid = sid_of(response)
    last = client.get("/export/last").json
    assert raw.get(f"session:{sid}")["last_export"] == last["key"]
    assert last["state"] == "complete: 3 lines"
    assert 24 * 3600 - 5 <= raw.ttl(last["key"]) <= 24 * 3600 + 1
    response = client.get("/export")  # a client that goes away
    assert next(iter(response.response)) == b"line 1\n"
    response.close()
    assert client.get("/export/last").json["state"] == "stopped at line 1"


@pytest.mark.parametrize("path", ["/export", "/export/last"])
def test_head_on_every_recipe_route_is_answered_like_get(recipe, path):
    client = recipe.app.test_client()
    client.get("/export").close()
    get, head = client.get(path), client.head(path)
    assert (head.status_code, head.data) == (get.status_code, b"")
    assert head.mimetype == get.mimetype


@pytest.mark.parametrize(
    "path", ["/in-view", "/in-generator", "/session", "/export", "/export/last"]
)
def test_head_on_the_store_routes_is_answered_like_get(store, path):
    app, _ = store
    client = app.test_client()
    client.get("/export?lines=1").close()  # so that /export/last has one
    head = client.head(path)
    assert (head.status_code, head.data) == (200, b"")
