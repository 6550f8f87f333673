"""Real servers on 127.0.0.1 for the live, proxy and browser tiers.

``serve(kind, ...)`` starts any of them on a free port, waits until it
accepts connections, yields a :class:`Server` (url, proc, ports, folder,
log(), stop()), and stops it cleanly. A server that cannot start raises
``ServerDidNotStart`` with its own output, so a broken live tier fails loudly
instead of hanging.

Binaries that come from the system (nginx, redis-server, chromium) go through
:func:`require_binary`: on a developer's machine a missing one skips the test
with a reason; in CI (``FSP_STRICT=1``, set by ``.ci/run``) it fails.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from tests import tiers

ROOT = Path(__file__).resolve().parent.parent
STRICT = os.environ.get("FSP_STRICT") == "1"
START_TIMEOUT = 60.0  # a busy 2-core machine can take this long


class ServerDidNotStart(RuntimeError):
    pass


SKIPPED_TIERS: set[str] = set()  # read by tests/conftest.py for the summary


def require_binary(name: str, *candidates: str) -> str:
    """Return the path of a system binary, or skip (fail in CI) without it."""
    found = tiers.find(name, *candidates)
    if found:
        return found
    reason = f"{name} is not installed (apt-get install {name}; make test does as root)"
    if STRICT:
        pytest.fail(f"FSP_STRICT=1 and {reason}", pytrace=False)
    SKIPPED_TIERS.add(name)
    pytest.skip(reason)


# Ports for the servers the tests start: below Linux's ephemeral range
# (32768-60999, where every client socket takes its local port, so a port we
# hand out cannot be taken meanwhile by a client), one slice per pytest-xdist
# worker (gw0, gw1, ...), so two workers never pick the same port.
PORTS_LOW, PORTS_HIGH, PORT_SLICES = 10000, 32767, 8
_next_port = None


def free_port() -> int:
    """A port no one listens on, from this process's own slice."""
    global _next_port
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    size = (PORTS_HIGH - PORTS_LOW) // PORT_SLICES
    low = PORTS_LOW + (int(worker) % PORT_SLICES if worker.isdecimal() else 0) * size
    if _next_port is None or not low <= _next_port < low + size:
        _next_port = low + (os.getpid() % size)
    for _ in range(size):
        port, _next_port = _next_port, low + (_next_port + 1 - low) % size
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            return port
    raise ServerDidNotStart(f"no free port in {low}-{low + size - 1}")


def wait_for_port(port: int, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerDidNotStart(f"exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.05)
    raise ServerDidNotStart(f"nothing listened on port {port}")


def open_request(url, path, *, method="GET", headers=(), body=b"", timeout=10.0):
    """Send one HTTP/1.1 request over a new socket, exactly as written (an HTTP
    client would normalise ``../`` or add headers), and return the socket, so
    a test reads the bytes the server really sends: status line, chunk sizes
    and all."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    head = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", *headers]
    if body:
        head.append(f"Content-Length: {len(body)}")
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return sock


def read_until(sock, marker: bytes, buffer: bytes = b"") -> bytes:
    """Receive until ``marker`` is in what was received; fail if the server
    closes first. Returns everything received, ``buffer`` included."""
    while marker not in buffer:
        data = sock.recv(65536)
        assert data, f"connection closed before {marker!r}: {buffer[-200:]!r}"
        buffer += data
    return buffer


def read_to_close(sock) -> bytes:
    """Receive until the server closes the connection."""
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true; return whether it was in time.
    Use it as ``assert wait_until(...)``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


# pyproject.toml's coverage setting ``patch = ["subprocess"]`` measures every
# Python subprocess: it passes its configuration in COVERAGE_PROCESS_CONFIG.
# The servers and workers started here run without it. Measured with it, the
# hang-up, servers-matrix and CLI tests used a third more CPU (126 s against
# 95 s without coverage), and the 100% gate needs none of it: the examples and
# in-process tests reach every line of snippets/, and measuring fewer
# processes can only lower the figure. The Python subprocesses tests run
# themselves (the CLI checks, the Sentry snippet's own interpreter) are still
# measured.
UNMEASURED = ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")


def server_env(env: dict | None = None) -> dict:
    """The environment of a server or worker: this one without coverage, with
    ``env`` on top and the project first on PYTHONPATH."""
    full = {k: v for k, v in os.environ.items() if k not in UNMEASURED}
    full.update({"PYTHONUNBUFFERED": "1", **(env or {})})
    full["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), full.get("PYTHONPATH")])
    )
    return full


@contextlib.contextmanager
def process_server(
    argv: list[str], port: int, *, env: dict | None = None, cwd: Path = ROOT
) -> Iterator[subprocess.Popen]:
    """Run a server command, wait for its port, stop it with SIGTERM."""
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 closed in finally
    # The server shares this file's offset with us: without O_APPEND, a line it
    # writes while read_log() has seeked to 0 overwrites the start of the log
    # and is lost. (mode "a+" cannot set the flag on an fd already open.)
    flags = fcntl.fcntl(log.fileno(), fcntl.F_GETFL)
    fcntl.fcntl(log.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)
    proc = subprocess.Popen(
        argv, cwd=cwd, env=server_env(env), stdout=log, stderr=subprocess.STDOUT
    )
    proc.log = log  # type: ignore[attr-defined]  # tests may read what it said
    try:
        try:
            wait_for_port(port, proc)
        except ServerDidNotStart as exc:
            log.seek(0)
            raise ServerDidNotStart(
                f"{' '.join(argv)}: {exc}\n--- its output ---\n{log.read()}"
            ) from None
        yield proc
    finally:
        stop(proc)
        log.close()


def stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, so the server can shut down cleanly; SIGKILL if it will not."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def read_log(proc: subprocess.Popen) -> str:
    proc.log.flush()  # type: ignore[attr-defined]
    proc.log.seek(0)  # type: ignore[attr-defined]
    return proc.log.read()  # type: ignore[attr-defined]


# --- One way to start anything ------------------------------------------------
#
#     with serve("gunicorn", "snippets.sse:app", worker_class="gthread") as server:
#         httpx.get(server.url + "/events")
#
# ``serve(kind, ...)`` starts any server, proxy, store or worker the site uses,
# on 127.0.0.1 and a free port, waits until it answers, and yields a
# :class:`Server`; leaving the block stops it (and its children). A server that
# cannot start raises ServerDidNotStart with its own output. The options of
# each ``_kind`` function below are that kind's documentation.


@dataclass
class Server:
    """What every launcher yields."""

    url: str  # http://127.0.0.1:PORT, redis://..., postgresql+psycopg://...
    proc: subprocess.Popen | None = None  # None: a thread of this process
    ports: dict[str, int] = field(default_factory=dict)  # by listen option
    folder: Path | None = None  # nginx's prefix: its conf and access.log

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc else os.getpid()

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def log(self) -> str:
        """What the server has printed so far (stdout and stderr)."""
        return read_log(self.proc) if self.proc else ""

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM now (SIGKILL after ``timeout`` s); leaving the block does
        it anyway."""
        if self.proc is not None:
            stop(self.proc, timeout)


@contextlib.contextmanager
def serve(kind: str, *args, **options) -> Iterator[Server]:
    """Start a server of ``kind`` (a key of :data:`KINDS`) with the arguments
    of its ``_kind`` function below; yield its :class:`Server`."""
    if kind not in KINDS:
        raise ValueError(f"no launcher for {kind!r}: one of {', '.join(KINDS)}")
    with KINDS[kind](*args, **options) as server:
        yield server


def _http(port: int) -> str:
    return f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def _command(argv, port, *, env=None, stop_after=15.0, **extra) -> Iterator[Server]:
    """A server process: started, awaited on ``port``, stopped with SIGTERM
    and, ``stop_after`` s later, SIGKILL (a bridge whose threads are stuck in
    abandoned generators never exits by itself)."""
    with process_server(argv, port, env=env) as proc:
        try:
            yield Server(_http(port), proc, **extra)
        finally:
            stop(proc, timeout=stop_after)


@contextlib.contextmanager
def _werkzeug(app, *, threaded: bool = True) -> Iterator[Server]:
    """Werkzeug's development server in a thread of this process, so a test
    can watch the app's objects. ``threaded=True`` is what ``flask run``
    uses: HTTP/1.1 and chunked bodies."""
    # A fresh handler class each time: a threaded server sets protocol_version
    # on the handler *class*, which would leak HTTP/1.1 into later servers.
    handler = type("Handler", (WSGIRequestHandler,), {})
    server = make_server(
        "127.0.0.1", 0, app, threaded=threaded, request_handler=handler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(_http(server.port))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _flask(module: str, *args: str, env=None) -> contextlib.AbstractContextManager:
    """``flask --app module run``: Werkzeug's threaded development server in
    its own process, as a reader runs it (``args`` after ``run``, e.g.
    ``--without-threads``)."""
    port = free_port()
    argv = [sys.executable, "-m", "flask", "--app", module, "run", "--port", str(port)]
    return _command([*argv, *args], port, env=env)


def _gunicorn(
    target: str, *args: str, worker_class: str = "sync", env=None
) -> contextlib.AbstractContextManager:
    """gunicorn serving ``target`` ("snippets.name:app") with one worker of
    ``worker_class`` (sync, gthread, gevent), ``args`` added."""
    port = free_port()
    argv = [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
        "--worker-class", worker_class, "--workers", "1",
        "--graceful-timeout", "2", *args, target,
    ]  # fmt: skip
    return _command(argv, port, env=env)


def _waitress(target: str, *args: str, env=None) -> contextlib.AbstractContextManager:
    """waitress serving ``target``."""
    port = free_port()
    argv = [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", *args]
    return _command([*argv, target], port, env=env)


UVICORN_BRIDGED = """
import sys
from importlib import import_module

import uvicorn

target, bridge, port, *args = sys.argv[1:]
module, name = target.split(":")
app = getattr(import_module(module), name)
if bridge == "a2wsgi":
    from a2wsgi import WSGIMiddleware

    app = WSGIMiddleware(app)
elif bridge == "asgiref":
    from asgiref.wsgi import WsgiToAsgi

    app = WsgiToAsgi(app)
uvicorn.run(app, host="127.0.0.1", port=int(port), timeout_graceful_shutdown=2)
"""


def _uvicorn(
    target: str, *args: str, bridge: str | None = None, stop_after: float = 15
) -> contextlib.AbstractContextManager:
    """uvicorn serving the ASGI app ``target`` ("snippets.name:asgi_app"), or
    the WSGI app ``target`` behind ``bridge`` ("a2wsgi" or "asgiref", asgiref's
    WsgiToAsgi: the bridge is applied here, as a reader's asgi.py would)."""
    port = free_port()
    if bridge:
        argv = [sys.executable, "-c", UVICORN_BRIDGED, target, bridge, str(port)]
    else:
        argv = [
            sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port",
            str(port), *args, target,
        ]  # fmt: skip
    return _command(argv, port, stop_after=stop_after)


def _hypercorn(
    target: str, *args: str, stop_after: float = 15
) -> contextlib.AbstractContextManager:
    """hypercorn serving ``target``: an ASGI app, or a WSGI app (hypercorn
    tells them apart by their call signature), its errors on stdout. Pass
    ``--workers 0`` to serve from this one process: with workers, a SIGKILL
    (after ``stop_after``) leaves them running as orphans."""
    port = free_port()
    argv = [
        sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}",
        "--error-logfile", "-", *args, target,
    ]  # fmt: skip
    return _command(argv, port, stop_after=stop_after)


UWSGI = Path(sys.executable).parent / "uwsgi"  # the pyuwsgi wheel, in this venv

# Runs the command after it with every signal at its default and none
# blocked. An ignored signal stays ignored across exec, and the embedded
# Python of a uWSGI worker then installs no SIGINT handler of its own: what
# asyncio.run() does to it (tests/async/test_views_live.py) depends on it.
# A shell starts a command run in the background (make test &) with SIGINT
# ignored, and the test failed that way: the launcher does not rely on it.
DEFAULT_SIGNALS = [
    sys.executable, "-c",
    "import os, signal, sys\n"
    "for s in signal.valid_signals():\n"
    "    if s not in (signal.SIGKILL, signal.SIGSTOP):\n"
    "        try: signal.signal(s, signal.SIG_DFL)\n"
    "        except (OSError, ValueError): pass\n"
    "signal.pthread_sigmask(signal.SIG_SETMASK, [])\n"
    "os.execv(sys.argv[1], sys.argv[1:])",
]  # fmt: skip


@contextlib.contextmanager
def _uwsgi(
    target: str,
    *args: str,
    listen: str | tuple[str, ...] = "--http-socket",
    env: dict | None = None,
    stop_with: signal.Signals = signal.SIGINT,
    stop_after: float = 10,
) -> Iterator[Server]:
    """uWSGI (the pyuwsgi wheel) serving ``target`` ("snippets.name:app")
    with ``args``, one free port per option in ``listen`` (``--http-socket``,
    ``--http11-socket``, ``--http`` (its HTTP router), or ``--socket``, the
    uwsgi protocol for nginx): ``Server.ports`` maps each to its port and
    ``Server.url`` is the first. Every signal starts at its default (see
    DEFAULT_SIGNALS). ``--die-on-term``: uWSGI 2.0 reloads on SIGTERM
    without it; ``--master`` so harakiri and a clean shutdown work. It yields
    once every worker (and the --http router) is up: a SIGTERM that comes
    before the master has loaded the app is ignored. Stopped with
    ``stop_with`` (SIGINT: workers die at once, even mid-stream), SIGKILL
    ``stop_after`` s later."""
    if not UWSGI.exists():
        raise ServerDidNotStart(f"{UWSGI} is missing: pip install pyuwsgi")
    listen = (listen,) if isinstance(listen, str) else listen
    ports = {option: free_port() for option in listen}
    module, _, callable_ = target.partition(":")
    argv = [*DEFAULT_SIGNALS, str(UWSGI), "--module", module]
    argv += ["--callable", callable_ or "app", "--pythonpath", str(ROOT)]
    for option, port in ports.items():
        argv += [option, f"127.0.0.1:{port}"]
    argv += ["--master", "--die-on-term", "--no-orphans", "--need-app", *args]
    workers = int(args[args.index("--processes") + 1]) if "--processes" in args else 1
    with process_server(argv, next(iter(ports.values())), env=env) as proc:

        def ready():
            log = read_log(proc)
            return log.count("spawned uWSGI worker") >= workers and (
                "--http" not in ports or "spawned uWSGI http 1" in log
            )

        if not wait_until(ready, START_TIMEOUT):
            raise ServerDidNotStart(f"{' '.join(argv)}:\n{read_log(proc)}")
        try:
            yield Server(_http(next(iter(ports.values()))), proc, ports)
        finally:
            proc.send_signal(stop_with)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=stop_after)
            if proc.poll() is None:
                proc.kill()


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 1024; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    {http}
    server {{
        listen 127.0.0.1:{port}{listen};
        {server}
    }}
}}
"""


@contextlib.contextmanager
def _nginx(server: str, *, http: str = "", listen: str = "") -> Iterator[Server]:
    """Debian's nginx, unprivileged on loopback, with ``server`` inside its
    ``server {}`` and ``http`` at ``http {}`` level (an ``upstream``, say);
    ``listen`` is appended to its ``listen`` directive (``" sndbuf=4k"``).
    Every temp, pid and log path is in ``Server.folder``."""
    binary = require_binary("nginx", "/usr/sbin/nginx")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        # Run as root, nginx's workers drop to an unprivileged user: they must
        # be able to enter the folder that holds their temp paths.
        os.chmod(tmp, 0o755)
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                tmp=tmp, port=port, listen=listen, http=http, server=server
            )
        )
        argv = [binary, "-p", tmp, "-c", str(conf), "-e", f"{tmp}/error.log"]
        with process_server(argv, port) as proc:
            yield Server(_http(port), proc, folder=Path(tmp))


@contextlib.contextmanager
def _redis() -> Iterator[Server]:
    """A throwaway redis-server with no persistence; ``url`` is redis://."""
    binary = require_binary("redis-server")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", tmp,
        ]  # fmt: skip
        with process_server(argv, port) as proc:
            yield Server(f"redis://127.0.0.1:{port}/0", proc)


@contextlib.contextmanager
def _memcached() -> Iterator[Server]:
    """A throwaway memcached on loopback (TCP only); ``url`` is
    "127.0.0.1:PORT", as pymemcache takes it."""
    binary = require_binary("memcached")
    port = free_port()
    argv = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "16"]
    if os.geteuid() == 0:
        argv += ["-u", "nobody"]  # memcached refuses to run as root without -u
    with process_server(argv, port) as proc:
        yield Server(f"127.0.0.1:{port}", proc)


@contextlib.contextmanager
def _asgi_thread(app, server: str = "uvicorn") -> Iterator[Server]:
    """An ASGI app (Quart) served by uvicorn or hypercorn in a thread of this
    process, so a test can watch the app's objects."""
    import asyncio

    port = free_port()
    stopping: dict = {}

    async def run():
        stopping["loop"], stopping["event"] = (
            asyncio.get_running_loop(),
            asyncio.Event(),
        )
        if server == "uvicorn":
            import uvicorn

            config = uvicorn.Config(
                app, host="127.0.0.1", port=port, log_level="warning",
                timeout_graceful_shutdown=1,
            )  # fmt: skip
            instance = uvicorn.Server(config)
            task = asyncio.ensure_future(instance.serve())
            await stopping["event"].wait()
            instance.should_exit = True
            await task
        else:
            from hypercorn.asyncio import serve as hypercorn_serve
            from hypercorn.config import Config

            config = Config()
            config.bind = [f"127.0.0.1:{port}"]
            config.graceful_timeout = 1
            await hypercorn_serve(app, config, shutdown_trigger=stopping["event"].wait)

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield Server(_http(port))
    finally:
        if "loop" in stopping:
            stopping["loop"].call_soon_threadsafe(stopping["event"].set)
        thread.join(timeout=15)


@contextlib.contextmanager
def started_together(managers: dict) -> Iterator[dict]:
    """Enter several launchers at once, and leave them at once: each uWSGI
    takes about a second to load the app and another to stop."""
    entered: dict = {}

    def enter(item):
        key, manager = item
        value = manager.__enter__()
        entered[key] = (manager, value)

    with ThreadPoolExecutor(max(1, len(managers))) as pool:
        try:
            futures = [pool.submit(enter, item) for item in managers.items()]
            for future in futures:  # all of them done, then the first failure
                future.exception()
            for future in futures:
                future.result()
            yield {key: value for key, (_, value) in entered.items()}
        finally:
            exits = [manager.__exit__ for manager, _ in entered.values()]
            list(pool.map(lambda leave: leave(None, None, None), exits))


@contextlib.contextmanager
def _postgres() -> Iterator[Server]:
    """A throwaway PostgreSQL cluster (initdb in a temporary folder, trust
    auth, fsync off) on 127.0.0.1; ``url`` is a SQLAlchemy URL for psycopg.
    PostgreSQL refuses to run as root: as root, it runs as ``postgres``."""
    postgres = require_binary("postgres", *tiers.TIERS["postgres"][1])
    initdb = str(Path(postgres).with_name("initdb"))
    try:
        import psycopg  # the driver the URL names
    except ImportError:
        reason = "psycopg is not installed (pip install 'psycopg[binary]')"
        if STRICT:
            pytest.fail(f"FSP_STRICT=1 and {reason}", pytrace=False)
        pytest.skip(reason)
    import shutil  # imported here, so this section merges on its own

    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        if as_user:
            shutil.chown(tmp, user="postgres")
        data = f"{tmp}/data"
        subprocess.run(
            [*as_user, initdb, "-D", data, "-A", "trust", "-U", "postgres",
             "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        argv = [
            *as_user, postgres, "-D", data, "-p", str(port), "-k", tmp,
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
        ]  # fmt: skip
        with process_server(argv, port) as proc:

            def ready():  # the port opens before the server takes queries
                try:
                    psycopg.connect(f"host=127.0.0.1 port={port} user=postgres").close()
                except psycopg.OperationalError:
                    return False
                return True

            if not wait_until(ready):
                raise ServerDidNotStart(f"postgres never ready:\n{read_log(proc)}")
            yield Server(
                f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", proc
            )


CELERY = str(Path(sys.executable).with_name("celery"))
# A worker imports Celery, kombu and the app before it is ready: slow on a
# busy machine (20 s seen here with three workers starting under coverage).
WORKER_START_TIMEOUT = 60.0


@contextlib.contextmanager
def _celery(
    target: str,
    redis_url: str,
    *,
    pool: str = "solo",
    args: tuple[str, ...] = (),
    env: dict | None = None,
) -> Iterator[Server]:
    """`celery -A target worker --pool=POOL` with REDIS_URL set (``url``), in
    its own process group; waits for its "ready." log line. The process gets
    ``startup_seconds`` (from launch to ready). Stopped with SIGTERM to the
    whole group (prefork children included), SIGKILL if it will not go."""
    spec = {"pool": pool, "args": args, "env": env}
    with celery_workers(target, {redis_url: spec}) as procs:
        yield Server(redis_url, procs[redis_url])


@contextlib.contextmanager
def celery_workers(
    target: str, specs: dict[str, dict]
) -> Iterator[dict[str, subprocess.Popen]]:
    """Several workers at once, ``{redis_url: {"pool", "args", "env"}}``:
    all start together, then all are awaited, then all stop together."""
    procs: dict[str, subprocess.Popen] = {}
    try:
        for redis_url, spec in specs.items():
            procs[redis_url] = _start_worker(target, redis_url, **spec)
        for proc in procs.values():
            ready = wait_until(
                lambda proc=proc: (
                    proc.poll() is not None or " ready." in read_log(proc)
                ),
                timeout=START_TIMEOUT,
            )
            if not ready or proc.poll() is not None:
                raise ServerDidNotStart(
                    f"{' '.join(proc.args)}: not ready\n--- its output ---\n"
                    f"{read_log(proc)}"
                )
            proc.startup_seconds = time.monotonic() - proc.started  # type: ignore[attr-defined]
        yield procs
    finally:
        for proc in procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            stop_group(proc)
            proc.log.close()  # type: ignore[attr-defined]


def _start_worker(target, redis_url, *, pool="solo", args=(), env=None):
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 closed by the caller
    flags = fcntl.fcntl(log.fileno(), fcntl.F_GETFL)
    fcntl.fcntl(log.fileno(), fcntl.F_SETFL, flags | os.O_APPEND)
    env = server_env({**(env or {}), "REDIS_URL": redis_url})
    argv = [
        CELERY, "-A", target, "worker", f"--pool={pool}", "--concurrency=1",
        "--loglevel=INFO", "--without-mingle", "--without-gossip", *args,
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    proc.log = log  # type: ignore[attr-defined]
    proc.started = started  # type: ignore[attr-defined]
    return proc


def stop_group(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM to the process group that ``proc`` leads, then SIGKILL to
    whatever is left of it (a prefork worker's children)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _s3():
    """moto's S3 server in a process of its own, its state in memory; the
    object it yields also has ``.client()``, a boto3 client for it."""
    from tests.launchers.s3 import s3_server

    return s3_server()


def _fake_llm(*args, **script):
    """A fake model provider speaking OpenAI's and Anthropic's streaming
    formats (tests/launchers/fake_llm.py; ``script`` shapes its answers)."""
    from tests.launchers.fake_llm import fake_llm

    return fake_llm(*args, **script)


KINDS = {
    "werkzeug": _werkzeug,
    "flask": _flask,
    "gunicorn": _gunicorn,
    "waitress": _waitress,
    "uwsgi": _uwsgi,
    "uvicorn": _uvicorn,
    "hypercorn": _hypercorn,
    "asgi-thread": _asgi_thread,
    "nginx": _nginx,
    "redis": _redis,
    "memcached": _memcached,
    "postgres": _postgres,
    "celery": _celery,
    "s3": _s3,
    "fake-llm": _fake_llm,
}


# --- The names the tests used before serve(): each is serve() of one kind,
# yielding what it used to (a URL, or the URL and the process). New code
# uses serve(). -----------------------------------------------------------------


@contextlib.contextmanager
def werkzeug_server(app, *, threaded: bool = True) -> Iterator[str]:
    with serve("werkzeug", app, threaded=threaded) as server:
        yield server.url


@contextlib.contextmanager
def gunicorn(target: str, *, worker_class: str = "sync", args: tuple[str, ...] = ()):
    with serve("gunicorn", target, *args, worker_class=worker_class) as server:
        yield server.url, server.proc


@contextlib.contextmanager
def waitress(target: str, *, args: tuple[str, ...] = ()) -> Iterator[str]:
    with serve("waitress", target, *args) as server:
        yield server.url


@contextlib.contextmanager
def waitress_app(target: str):
    with serve("waitress", target) as server:
        yield server.url, server.proc


@contextlib.contextmanager
def flask_run(module: str, *args: str):
    with serve("flask", module, *args) as server:
        yield server.url, server.proc


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    with serve("redis") as server:
        yield server.url


@contextlib.contextmanager
def memcached() -> Iterator[str]:
    with serve("memcached") as server:
        yield server.url


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    with serve("postgres") as server:
        yield server.url


@contextlib.contextmanager
def nginx(server_block: str, *, listen: str = "") -> Iterator[str]:
    with serve("nginx", server_block, listen=listen) as server:
        yield server.url


@contextlib.contextmanager
def nginx_http(
    http_block: str, server_block: str, *, listen: str = ""
) -> Iterator[str]:
    with serve("nginx", server_block, http=http_block, listen=listen) as server:
        yield server.url


@contextlib.contextmanager
def uwsgi(target: str, *args: str, listen=("--http-socket",), env=None):
    with serve(
        "uwsgi", target, *args, "--disable-logging", listen=listen, env=env
    ) as server:
        yield server.ports, server.proc


@contextlib.contextmanager
def uwsgi_http(*args: str, listen: str = "--http-socket", stop_after: float = 15):
    """``args`` hold ``--module snippets.name:app`` (the matrix's form)."""
    rest = list(args)
    target = rest.pop(rest.index("--module") + 1)
    rest.remove("--module")
    with serve(
        "uwsgi", target, *rest, listen=listen, stop_with=signal.SIGTERM,
        stop_after=stop_after,
    ) as s:  # fmt: skip
        yield s.url, s.proc


@contextlib.contextmanager
def uwsgi_router(target: str, *, args: tuple[str, ...] = ()):
    with serve("uwsgi", target, "--processes", "1", *args, listen="--http") as s:
        yield s.url, s.proc


@contextlib.contextmanager
def uvicorn(target: str, *args: str, stop_after: float = 15):
    with serve("uvicorn", target, *args, stop_after=stop_after) as server:
        yield server.url, server.proc


@contextlib.contextmanager
def uvicorn_app(target: str, *, bridge: str | None = None):
    with serve("uvicorn", target, bridge=bridge) as server:
        yield server.url, server.proc


@contextlib.contextmanager
def hypercorn(target: str, *args: str, stop_after: float = 15):
    with serve("hypercorn", target, *args, stop_after=stop_after) as server:
        yield server.url, server.proc


@contextlib.contextmanager
def hypercorn_app(target: str):
    with serve("hypercorn", target, "--graceful-timeout", "2") as server:
        yield server.url, server.proc


@contextlib.contextmanager
def asgi_in_thread(app, server: str = "uvicorn") -> Iterator[str]:
    with serve("asgi-thread", app, server) as running:
        yield running.url


@contextlib.contextmanager
def celery_worker(target: str, redis_url: str, **options):
    with serve("celery", target, redis_url, **options) as server:
        yield server.proc


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """The data of a chunked body, and whether its last (0) chunk came.
    (Here, not in tests/async/: ``async`` is a keyword, so no module can
    ``from tests.async... import`` anything.)"""
    data = b""
    while body:
        size_line, sep, body = body.partition(b"\r\n")
        if not sep:
            return data, False
        size = int(size_line, 16)
        if size == 0:
            return data, True
        data, body = data + body[:size], body[size + 2 :]
    return data, False


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a server and its children (gunicorn's workers), the way a
    crashed machine stops: no handler runs, no connection is closed politely.
    The master goes first, so it cannot start a new worker."""
    import psutil

    children = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    proc.wait()
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(children, timeout=10)
