"""Every snippet is a complete app: `flask --app snippets.<name> run` serves it."""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests import snippet_index
from tests.servers import ROOT, free_port, process_server, read_log, server_env

# Every module that defines `app` (tests/snippet_index.py): not the shared
# checks, nor the Redis store jobs.py imports.
SNIPPETS = snippet_index.apps()


@pytest.mark.parametrize("name", SNIPPETS)
def test_flask_cli_loads_snippet(name):
    """The Flask CLI (Quart's, for the Quart app) finds `app` in the module
    and lists its routes."""
    cli = snippet_index.cli(name)
    result = subprocess.run(
        [sys.executable, "-m", cli, "--app", f"snippets.{name}", "routes"],
        cwd=ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    if cli == "flask":
        assert "static" in result.stdout  # every Flask app has the static route
    assert len(result.stdout.splitlines()) > 3, "no routes of its own"


@pytest.mark.live
def test_flask_run_streams_a_snippet_as_it_is():
    """`flask run` (threaded by default) answers with a chunked stream."""
    port = free_port()
    argv = [
        sys.executable, "-m", "flask", "--app", "snippets.responses",
        "run", "--port", str(port),
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}/count?n=3"
    with process_server(argv, port, cwd=Path(ROOT)), httpx.stream("GET", url) as r:
        chunks = list(r.iter_raw())
        assert r.headers["transfer-encoding"] == "chunked"
    assert b"".join(chunks) == b"line 1\nline 2\nline 3\n"


def test_server_log_keeps_every_line_while_it_is_read():
    """read_log() seeks while the server writes; not one line may be lost."""
    port = free_port()
    script = (
        "import socket\n"
        f"socket.create_server(('127.0.0.1', {port})).accept()\n"
        "for i in range(20000): print(f'line {i}', flush=True)\n"
    )  # it starts writing once process_server has seen it listen
    with process_server([sys.executable, "-c", script], port) as proc:
        while proc.poll() is None:
            read_log(proc)
        assert read_log(proc).count("line ") == 20000
