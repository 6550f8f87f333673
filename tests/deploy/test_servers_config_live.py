"""deploy/servers: the gunicorn.conf.py the page shows, used as it is: a
stream longer than its timeout completes, and each thread holds one
stream. Sized through the environment, as the file says."""

import runpy
import sys
from pathlib import Path

import pytest

from tests.deploy_matrix import (
    TARGET,
    TIMEOUT_S,
    measure_concurrency,
    measure_long_stream,
)
from tests.servers import free_port, process_server

pytestmark = pytest.mark.live

CONF = Path(__file__).resolve().parents[2] / "docs" / "deploy" / "_conf"
GUNICORN_CONF = CONF / "gunicorn.conf.py"


def test_the_gunicorn_conf_defaults_are_gthread_2_by_32_with_a_30_s_timeout(
    monkeypatch,
):
    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    settings = runpy.run_path(str(GUNICORN_CONF))
    assert settings["worker_class"] == "gthread"
    assert (settings["workers"], settings["threads"]) == (2, 32)
    assert (settings["timeout"], settings["graceful_timeout"]) == (30, 30)
    assert settings["keepalive"] == 5


def test_the_gunicorn_conf_streams_past_its_timeout_one_stream_a_thread():
    """One worker, four threads and a 2 s timeout from the environment: a
    stream with 4 s of silence completes (a sync worker cuts it: the
    matrix), and four of twelve slow streams get a first byte at once."""
    port = free_port()
    argv = [
        sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF),
        "--bind", f"127.0.0.1:{port}", TARGET,
    ]  # fmt: skip
    env = {
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "4",
        "GUNICORN_TIMEOUT": str(TIMEOUT_S),
    }
    with process_server(argv, port, env=env):
        url = f"http://127.0.0.1:{port}"
        assert measure_long_stream(url)["long_stream"] == "complete"
        assert measure_concurrency(url) == {"concurrent": 4, "tried": 12}
