"""Flask-Session without a running store: proof for
docs/extensions/flask_session.rst (the stores themselves are in ..._live.py)."""

import importlib.util
import subprocess
import sys

import pymemcache
import pytest
from flask import Flask
from flask_session import Session
from flask_session.memcached import MemcachedSessionInterface
from pymemcache import PooledClient

from snippets.flask_session_stores import app, create_app
from tests.servers import ROOT, server_env


def test_memcached_without_a_client_warns_and_picks_pymemcache_on_11211():
    """Flask-Session 0.8 tries pylibmc, python-memcached (`memcache`),
    pymemcache and libmc, in that order, on 127.0.0.1:11211. Here only
    pymemcache is installed, so it makes pymemcache's plain Client."""
    assert [
        importlib.util.find_spec(name) is None for name in ("pylibmc", "memcache")
    ] == [True, True]
    bare = Flask(__name__)
    bare.config["SESSION_TYPE"] = "memcached"
    with pytest.warns(RuntimeWarning, match="No valid memcache.Client instance"):
        Session(bare)
    client = bare.session_interface.client
    assert type(client) is pymemcache.Client  # not the thread-safe PooledClient
    assert client.server == ("127.0.0.1", 11211)
    assert client.default_noreply is True  # writes do not wait for an answer


def test_redis_without_a_client_warns_and_connects_to_localhost_6379():
    bare = Flask(__name__)
    bare.config["SESSION_TYPE"] = "redis"
    with pytest.warns(RuntimeWarning, match="No valid Redis instance provided"):
        Session(bare)
    kwargs = bare.session_interface.client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"]) == ("localhost", 6379)


def test_snippet_passes_its_own_pooled_client():
    memcached_app = create_app("memcached://127.0.0.1:1")
    interface = memcached_app.session_interface
    assert isinstance(interface, MemcachedSessionInterface)
    assert isinstance(interface.client, PooledClient)
    assert interface.client.server == ("127.0.0.1", 1)
    assert interface.client.default_noreply is False


def test_unknown_store_url_is_refused():
    with pytest.raises(ValueError, match="unknown session store 'mongodb://x'"):
        create_app("mongodb://x")


@pytest.mark.parametrize("lines", ["", "ten", "0", "1001", "-1", "9" * 5000])
def test_bad_line_counts_are_a_400_that_touches_no_store(lines):
    """The module's app points at a Redis that is not running here: a 400
    before the session is changed never reaches it."""
    response = app.test_client().get(f"/export?lines={lines}")
    assert response.status_code == 400
    assert b"lines must be a whole number from 1 to 1,000" in response.data
    assert "Set-Cookie" not in response.headers


def test_a_session_without_an_export_gets_a_404_without_the_store():
    response = app.test_client().get("/export/last")
    assert response.status_code == 404
    assert b"no finished export in this session" in response.data


def test_the_recipe_refuses_to_start_without_flask_secret_key():
    env = {k: v for k, v in server_env().items() if k != "FLASK_SECRET_KEY"}
    done = subprocess.run(
        [sys.executable, "-c", "import snippets.flask_session"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().endswith("KeyError: 'FLASK_SECRET_KEY'")
