"""formats/command_output over a real socket, on Werkzeug's threaded server
(in this process) and gunicorn's gthread worker: a client that leaves, a
client that never reads, a deadline, and a worker killed mid-stream.

Every test ends with no process of its own left running (a killed orphan may
stay a zombie here, because PID 1 does not reap: it runs nothing).
"""

import contextlib
import json
import logging
import os
import signal
import socket
import threading

import httpx
import psutil
import pytest

from snippets import command_output_full as command_output
from tests.formats.test_command_output import (
    all_slots_free,
    blocked_writing_a_full_pipe,
    running,
)
from tests.servers import (
    gunicorn,
    open_request,
    read_log,
    read_until,
    wait_until,
    werkzeug_server,
)

pytestmark = pytest.mark.live


class Server:
    """A running server: its URL, the process that runs the app's code (whose
    descendants are the commands) and the log lines the app wrote."""

    def __init__(self, url, pid, log):
        self.url, self.pid, self.log = url, pid, log

    def commands(self, program):
        """Live descendants of the app's process whose argv[0] ends with
        ``program``."""
        found = []
        with contextlib.suppress(psutil.NoSuchProcess):
            for proc in psutil.Process(self.pid).children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    argv = proc.cmdline()
                    if argv and argv[0].endswith(program) and running(proc.pid):
                        found.append(proc.pid)
        return found


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def serve(kind):
    if kind == "werkzeug":
        handler = Collect()
        command_output.app.logger.addHandler(handler)
        try:
            with werkzeug_server(command_output.app) as url:
                yield Server(url, os.getpid(), lambda: "\n".join(handler.lines))
        finally:
            command_output.app.logger.removeHandler(handler)
    else:
        args = ("--threads", "4")
        with gunicorn(
            "snippets.command_output_full:app", worker_class="gthread", args=args
        ) as (url, proc):
            yield Server(url, proc.pid, lambda: read_log(proc))


@pytest.fixture(scope="module", params=["werkzeug", "gthread"])
def server(request):
    with serve(request.param) as running_server:
        yield running_server


@pytest.fixture
def gthread():
    with serve("gthread") as running_server:
        yield running_server


def lines_of(response):
    for line in response.iter_lines():
        if line:
            yield json.loads(line)


def test_client_that_leaves_ends_the_command_and_its_children(server):
    with (
        httpx.Client(base_url=server.url, timeout=20) as http,
        http.stream("GET", "/run/tree?n=300") as response,
    ):
        assert response.headers["content-type"] == "application/x-ndjson"
        records = lines_of(response)
        command, worker = map(int, next(records)["stdout"].split()[1:])
        assert next(r for r in records if r.get("stdout") == "worker ready")
        assert running(command) and running(worker)
    # The connection is closed: the next write fails, the generator's finally
    # ends the whole group, and the app logs it.
    assert wait_until(lambda: not running(command) and not running(worker), 20)
    assert wait_until(lambda: "cleaned up tree: exit -15" in server.log(), 20)


def test_deadline_ends_a_silent_command_with_a_final_record(server):
    with httpx.Client(base_url=server.url, timeout=20) as http:
        response = http.get("/run/sleep?n=600")  # "sleep" may run 2 s
    got = [json.loads(line) for line in response.text.splitlines()]
    assert got[-1] == {"exit": -signal.SIGTERM, "timed_out": True}
    assert all(record == {"heartbeat": True} for record in got[:-1])
    assert len(got) >= 2  # a heartbeat every second of silence
    assert response.elapsed.total_seconds() < 15
    assert server.commands("sleep") == []


def test_client_that_never_reads_stalls_the_command_until_the_deadline(server):
    """``yes`` writes without end. A client that reads nothing fills the
    socket's buffers, the server's write blocks, the generator stops reading
    the pipe, and ``yes`` blocks in write(): output is bounded, not buffered
    in memory. The deadline's timer still ends it, although the generator is
    stuck in a write; the generator's own cleanup waits for the client."""
    sock = open_request(server.url, "/run/yes?n=1")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        assert wait_until(lambda: len(server.commands("yes")) == 1, 20)
        (pid,) = server.commands("yes")
        proc = psutil.Process(pid)
        assert wait_until(lambda: blocked_writing_a_full_pipe(pid), 20)
        written = proc.io_counters().write_chars
        assert written < 256 * 1024 * 1024  # about 3 s of yes, unblocked: GBs
        # The deadline (3 s) ends yes while the generator still waits to write.
        assert wait_until(lambda: not running(pid), 20)
        assert "cleaned up yes" not in server.log()
    finally:
        sock.close()
    assert wait_until(lambda: "cleaned up yes: exit -15" in server.log(), 20)


def test_a_killed_worker_cuts_the_stream_and_leaves_the_commands_child_running(
    gthread,
):
    """SIGKILL runs no Python: no finally, no cleanup. The client sees a body
    without the exit record. Nothing stops the command, in a session of its
    own: it ends only at its next write, which finds no reader (a tick comes
    every 0.1 s; it would have ticked for 30 s), and the child it started,
    which writes nothing, goes on running. This is the limit of cleanup in
    the generator."""
    command = worker = None
    try:
        with (
            httpx.Client(base_url=gthread.url, timeout=20) as http,
            http.stream("GET", "/run/tree?n=300") as response,
        ):
            records = lines_of(response)
            seen = []
            # Up to the child's one line: from the kill on, a write to the
            # pipe fails, and a child whose first write came after the kill
            # was gone too.
            for record in records:
                seen.append(record)
                if record == {"stdout": "worker ready"}:
                    break
            else:  # seen once in a clean-clone run: say what came instead
                pytest.fail(f"the body ended first: {len(seen)} records, {seen[-3:]}")
            (pids,) = [r["stdout"] for r in seen if r.get("stdout", "")[:5] == "pids "]
            command, worker = map(int, pids.split()[1:])
            (gunicorn_worker,) = psutil.Process(gthread.pid).children()
            gunicorn_worker.send_signal(signal.SIGKILL)
            with pytest.raises(httpx.RemoteProtocolError):
                seen.extend(records)  # chunked, cut without its last chunk
        assert all("exit" not in record for record in seen)
        assert wait_until(lambda: not running(command), timeout=10)
        assert running(worker)  # an orphan, still running
    finally:
        for pid in (command, worker):
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_twenty_clients_at_once_run_at_most_max_running_commands(monkeypatch):
    """Twenty clients ask for ``yes`` at the same moment on Werkzeug's threaded
    server: MAX_RUNNING get a 200 and a running command, the others a 503
    with Retry-After; sampled every 10 ms from the first request to the last
    close, the commands never number more than the cap."""
    cap = command_output.MAX_RUNNING
    # yes's own 3 s would end the first commands while a slow machine is
    # still opening the twentieth request.
    monkeypatch.setitem(command_output.COMMANDS, "yes", (["yes"], 60))
    assert all_slots_free()  # an earlier test's stream may still be ending
    with serve("werkzeug") as server:
        counts, done = [], threading.Event()

        def sample():
            while not done.wait(0.01):
                counts.append(len(server.commands("yes")))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            socks = [open_request(server.url, "/run/yes?n=1") for _ in range(20)]
            heads = [read_until(sock, b"\r\n\r\n") for sock in socks]
            assert wait_until(lambda: len(server.commands("yes")) == cap, 10)
            for sock in socks:
                sock.close()
            assert wait_until(lambda: server.commands("yes") == [], 20)
        finally:
            done.set()
            sampler.join()
        ok = [head for head in heads if head.startswith(b"HTTP/1.1 200")]
        refused = [head for head in heads if head.startswith(b"HTTP/1.1 503")]
        assert len(ok) == cap and len(refused) == 20 - cap
        assert all(b"Retry-After: 5" in head for head in refused)
        assert max(counts) == cap
        assert all_slots_free()  # each stream frees its slot as it ends
        assert httpx.get(f"{server.url}/run/count?n=1").status_code == 200
