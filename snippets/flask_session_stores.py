"""Flask-Session with a Redis or a memcached store, and a streamed response:
what the store keeps from a change in the view, and from one in the generator.

    export SESSION_STORE=memcached://127.0.0.1:11211  # or redis://...
    flask --app snippets.flask_session_stores run
"""

import os
import uuid
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    session,
    stream_with_context,
)
from flask_session import Session
from pymemcache import PooledClient
from redis import Redis

from snippets.checks import secret_key, whole_number

streams = Blueprint("streams", __name__)
MAX_LINES = 1000
OUTCOME_SECONDS = 24 * 60 * 60  # how long the store keeps what a stream did


# [config]
def session_config(store_url):
    """Flask-Session settings for a redis:// or memcached:// URL."""
    parts = urlsplit(store_url)
    if parts.scheme == "redis":
        return {"SESSION_TYPE": "redis", "SESSION_REDIS": Redis.from_url(store_url)}
    if parts.scheme == "memcached":
        # Pass a client: without one, Flask-Session picks a library itself and
        # connects to 127.0.0.1:11211. PooledClient is pymemcache's thread-safe
        # client; default_noreply=False makes a refused write an error, not silence.
        address = (parts.hostname, parts.port or 11211)
        client = PooledClient(address, default_noreply=False)
        return {"SESSION_TYPE": "memcached", "SESSION_MEMCACHED": client}
    raise ValueError(f"unknown session store {store_url!r}")


def create_app(store_url):
    app = Flask(__name__)
    app.secret_key = secret_key()
    app.config.update(session_config(store_url))
    Session(app)  # replaces app.session_interface
    app.register_blueprint(streams)
    return app


# [config-end]


# [in-view]
@streams.get("/in-view")
def in_view():
    count = session["exports"] = session.get("exports", 0) + 1  # saved

    def generate():
        yield f"export {count} started\n"

    return Response(generate(), mimetype="text/plain")


# [in-view-end]


# [in-generator]
@streams.get("/in-generator")
def in_generator():
    @stream_with_context
    def generate():
        yield "working\n"
        session["finished"] = True  # no error, and never stored
        yield "done\n"

    return Response(generate(), mimetype="text/plain")


# [in-generator-end]


@streams.get("/session")
def show_session():
    return dict(session)


# [outcome]
def outcomes():
    """The session store's own client: Redis, or pymemcache's PooledClient."""
    config = current_app.config
    return config.get("SESSION_REDIS") or config["SESSION_MEMCACHED"]


@streams.get("/export")
def export():
    lines = whole_number("lines", 1, MAX_LINES, default=3)
    key = f"export:{uuid.uuid4().hex}"
    session["last_export"] = key  # the key goes in the session, in the view
    store = outcomes()

    def generate():
        try:
            for number in range(1, lines + 1):
                state = f"stopped at line {number}"
                yield f"line {number}\n"
            state = f"complete: {lines} lines"
        finally:  # the generator writes its own key, not the session
            # redis-py's set(name, value, ex) and pymemcache's set(key, value,
            # expire) take the same three arguments.
            store.set(key, state.encode(), OUTCOME_SECONDS)

    return Response(generate(), mimetype="text/plain")


@streams.get("/export/last")
def last_export():
    key = session.get("last_export")
    state = key and outcomes().get(key)
    if not state:
        abort(404, "no finished export in this session")
    return {"key": key, "state": state.decode()}


# [outcome-end]

app = create_app(os.environ.get("SESSION_STORE", "redis://127.0.0.1:6379/0"))
