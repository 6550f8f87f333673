"""snippets/lifetime.py on four servers: a client reads four lines of an
endless stream and hangs up, then 30 requests ask /state what they see. The
leaky view holds a ``stream_with_context`` generator with a session; the
recipe pushes a context only around each query and ends at a deadline.

Measured with Flask 3.1.3, Flask-SQLAlchemy 3.1.1, Werkzeug 3.1.9, gunicorn
27.0.1, uvicorn 0.54.0 + a2wsgi 1.10.10, hypercorn 0.18.0:

=================  ============  ==========  ==============  =======
server             generator     stale ``g``  checked out     teardown
=================  ============  ==========  ==============  =======
flask run          closed        0 of 30     0               ran
gunicorn gthread   closed        0 of 30     0               ran
uvicorn + a2wsgi   keeps running 0 of 30     1 (for ever)    never
hypercorn          keeps running 0 of 30     1 (for ever)    never
=================  ============  ==========  ==============  =======

With the recipe, every server: 0 stale, a connection checked out only
while a query runs (0 once it ended), and the generator ends at its
deadline.
"""

import contextlib
import time

import httpx
import pytest

from tests.servers import (
    flask_run,
    gunicorn,
    hypercorn,
    open_request,
    read_until,
    uvicorn_app,
    wait_until,
)

pytestmark = pytest.mark.live

MODULE = "snippets.lifetime"
DEADLINE_S = 3  # LIFETIME_MAX_SECONDS for the recipe's generator
SERVERS = {
    "flask-run": lambda: flask_run(MODULE),
    "gunicorn-gthread": lambda: gunicorn(
        f"{MODULE}:app", worker_class="gthread", args=("--threads", "4")
    ),
    "uvicorn-a2wsgi": lambda: uvicorn_app(f"{MODULE}:app", bridge="a2wsgi"),
    # One process (--workers 0): with workers, a stop leaves them behind.
    "hypercorn": lambda: hypercorn(f"{MODULE}:app", "--workers", "0"),
}
CLOSES = {"flask-run": True, "gunicorn-gthread": True}  # the others: never


@contextlib.contextmanager
def serving(name, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/lifetime.db")
    monkeypatch.setenv("LIFETIME_MAX_SECONDS", str(DEADLINE_S))
    with SERVERS[name]() as (url, _proc):
        yield url


def state(url):
    return httpx.get(f"{url}/state", timeout=10).json()


def hang_up_after_four_lines(url, path):
    with open_request(url, path) as sock:
        read_until(sock, b"\n3")


def teardowns_between_two_requests(url):
    """How many teardowns ran between two /state requests: 1 (the first
    request's own) when nothing else is running."""
    return -(state(url)["teardowns"] - state(url)["teardowns"])


@pytest.mark.parametrize("name", SERVERS)
def test_an_abandoned_stream_with_context_generator_per_server(
    name, tmp_path, monkeypatch
):
    with serving(name, tmp_path, monkeypatch) as url:
        hang_up_after_four_lines(url, "/leaky")
        first = state(url)
        if CLOSES.get(name):
            # Closed: its ticks stop, teardown returns the connection.
            assert wait_until(lambda: state(url)["checked_out"] == 0, 10)
            ticks = state(url)["leaky_ticks"]
            seen = [state(url) for _ in range(30)]
            assert seen[-1]["leaky_ticks"] == ticks
        else:
            # Never closed: the server keeps iterating it, with its session.
            assert wait_until(
                lambda: state(url)["leaky_ticks"] > first["leaky_ticks"] + 5, 10
            )
            seen = [state(url) for _ in range(30)]
            assert seen[-1]["checked_out"] == 1
            assert seen[-1]["leaky_ticks"] > first["leaky_ticks"]
        assert [s["stale_g"] for s in seen] == [None] * 30


@pytest.mark.parametrize("name", SERVERS)
def test_the_recipe_leaves_nothing_behind_per_server(name, tmp_path, monkeypatch):
    """Whether the server closes the generator or not: no connection stays
    checked out, no request sees another's ``g``, and the generator ends by
    its deadline (then only each request's own teardown runs)."""
    with serving(name, tmp_path, monkeypatch) as url:
        started = time.monotonic()
        hang_up_after_four_lines(url, "/ticks")
        seen = [state(url) for _ in range(30)]
        assert [s["stale_g"] for s in seen] == [None] * 30
        # At most the query running at that moment holds a connection.
        assert max(s["checked_out"] for s in seen) <= 1
        assert wait_until(lambda: teardowns_between_two_requests(url) == 1, 20)
        assert time.monotonic() - started < DEADLINE_S + 10
        seen = [state(url) for _ in range(30)]
        assert [s["checked_out"] for s in seen] == [0] * 30
