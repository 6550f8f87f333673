"""Celery without a broker: input checked before anything is queued, and the
install pitfalls. Proof for docs/extensions/celery.rst (the worker and Redis
are in test_celery_live.py)."""

import subprocess
import sys
from importlib.metadata import requires

import pytest
from celery.concurrency import get_implementation
from celery.concurrency.base import BasePool

from snippets.celery_reports import app
from tests.servers import CELERY, ROOT, server_env


@pytest.fixture
def client():
    """The module's app: its broker (127.0.0.1:6379) is not running here, so
    anything that reached it would fail with a connection error, not a 4xx."""
    return app.test_client()


@pytest.mark.parametrize("steps", ["", "ten", "0", "1001", "2.5", "9" * 5000])
def test_bad_steps_are_a_400_before_anything_is_queued(client, steps):
    response = client.post("/reports", data={"steps": steps})
    assert response.status_code == 400
    assert b"steps must be a whole number from 1 to 1,000" in response.data
    assert client.get_cookie("session") is None


@pytest.mark.parametrize("path", ["/events", "/progress.ndjson", "/cancel"])
def test_a_task_this_session_did_not_start_is_a_404(client, path):
    method = client.post if path == "/cancel" else client.get
    response = method(f"/reports/made-up{path}")
    assert response.status_code == 404
    assert b"no report &#39;made-up&#39; in this session" in response.data


@pytest.mark.parametrize("last_id", ["x", "-1", "1001", "1e3", "9" * 5000])
def test_a_malformed_last_event_id_is_a_400(client, last_id):
    with client.session_transaction() as session:
        session["reports"] = ["t1"]
    response = client.get("/reports/t1/events", headers={"Last-Event-ID": last_id})
    assert response.status_code == 400
    assert b"Last-Event-ID must be a whole number from 0 to 1,000" in response.data
    response = client.get(f"/reports/t1/progress.ndjson?after={last_id}")
    assert response.status_code == 400


def test_kombu_redis_extra_pins_exact_versions():
    """celery[redis] pulls kombu[redis], which pins packaging exactly: a
    project that needs another packaging cannot install it next to Celery."""
    assert 'packaging==26.3; extra == "redis"' in requires("kombu")
    assert 'redis<9.0.0,>=6.4.0; extra == "redis"' in requires("kombu")


def test_celery_dash_a_on_the_module_finds_the_flask_app():
    """`-A snippets.celery` takes the module's `app`, which is the
    Flask app here: name the Celery instance (`module:celery_app`)."""
    done = subprocess.run(
        [CELERY, "-A", "snippets.celery", "worker", "--pool=solo"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "FLASK_SECRET_KEY": "k"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "AttributeError: 'Flask' object has no attribute 'user_options'"
    )


@pytest.mark.parametrize("pool", ["solo", "threads"])
def test_solo_and_threads_pools_cannot_kill_a_task(pool):
    """What revoke(terminate=True) asks of the pool. (Prefork's pool sets its
    own terminate_job when it starts: the live test shows it kill a task.)"""
    pool_class = get_implementation(pool)
    assert pool_class.terminate_job is BasePool.terminate_job
    with pytest.raises(NotImplementedError, match="does not implement kill_job"):
        BasePool.terminate_job(None, 1234)


def test_the_recipe_refuses_to_start_without_flask_secret_key():
    env = {k: v for k, v in server_env().items() if k != "FLASK_SECRET_KEY"}
    done = subprocess.run(
        [sys.executable, "-c", "import snippets.celery"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().endswith("KeyError: 'FLASK_SECRET_KEY'")
