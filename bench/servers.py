"""The servers comparison: the same streamed CSV through every server in the
matrix, against the in-memory limit, in one run.

Each server is started from an argv list built here (as :mod:`bench.network`
does), on a free port on 127.0.0.1, one worker each, and read by the same
raw-socket client. The batched CSV is fetched with the snippet's 64 KiB
chunks and with bigger ones, which shows how much of a server's cost is per
chunk rather than per byte.
"""

import shutil
import statistics
import sys
from pathlib import Path

from bench.client import BUFFER_SIZE
from bench.network import in_memory, timed
from snippets.csv_export import CHUNK_SIZE, csv_chunks
from tests.servers import free_port, process_server

BIN = Path(sys.executable).parent
PY = sys.executable


def uwsgi_binary():
    """pyuwsgi's ``uwsgi`` next to this Python, else one on PATH."""
    local = BIN / "uwsgi"
    return str(local) if local.exists() else (shutil.which("uwsgi") or "uwsgi")


# [argv]
def gunicorn_argv(worker_class, *extra):
    return lambda port: [
        PY, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
        "--worker-class", worker_class, *extra, "bench.apps:app",
    ]  # fmt: skip


def uvicorn_argv(target):
    return lambda port: [
        PY, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--log-level", "warning", target,
    ]  # fmt: skip


SERVERS = {
    "Werkzeug threaded (flask run)": lambda port: [
        PY, "-m", "flask", "--app", "bench.apps", "run",
        "--host", "127.0.0.1", "--port", str(port),
    ],
    "gunicorn sync": gunicorn_argv("sync"),
    "gunicorn gthread (4 threads)": gunicorn_argv("gthread", "--threads", "4"),
    "gunicorn gevent": gunicorn_argv("gevent"),
    "waitress": lambda port: [
        PY, "-m", "waitress", "--host", "127.0.0.1", "--port", str(port),
        "--threads", "4", "bench.apps:app",
    ],
    "uWSGI (--http-socket)": lambda port: [
        uwsgi_binary(), "--http-socket", f"127.0.0.1:{port}",
        "--module", "bench.apps:app", "--processes", "1", "--master",
        "--die-on-term", "--disable-logging", "--need-app",
    ],
    "uvicorn + a2wsgi": uvicorn_argv("bench.asgi:a2wsgi_app"),
    "uvicorn + asgiref WsgiToAsgi": uvicorn_argv("bench.asgi:asgiref_app"),
    "hypercorn (WSGI)": lambda port: [
        PY, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
        "wsgi:bench.apps:app",
    ],
}  # fmt: skip
# [argv-end]


def servers(rows, repeats, chunks=(CHUNK_SIZE, 1024 * 1024), names=tuple(SERVERS)):
    """Rows per second and time to first byte for each server and chunk size."""
    buffer = bytearray(BUFFER_SIZE)
    limit = {c: in_memory(rows, repeats, lambda r, c=c: csv_chunks(r, c))
             for c in chunks}  # fmt: skip
    results = []
    for name in names:
        port = free_port()
        with process_server(SERVERS[name](port), port):
            url = f"http://127.0.0.1:{port}"
            for chunk in chunks:
                runs = timed(f"{url}/batched.csv?rows={rows}&chunk={chunk}",
                             repeats, buffer)  # fmt: skip
                totals = [r.total for r in runs]
                results.append(
                    {
                        "server": name,
                        "chunk": chunk,
                        "rows": rows,
                        "body_bytes": runs[0].body_bytes,
                        "runs": totals,
                        "ttfb_runs": [r.ttfb for r in runs],
                        "ttfb": statistics.median(r.ttfb for r in runs),
                        "rows_per_second": rows / statistics.median(totals),
                        "best_rows_per_second": rows / min(totals),
                        # best against best: noise only ever slows a run down
                        "of_limit": min(limit[chunk]) / min(totals),
                    }
                )
    return {
        "rows": rows,
        "repeats": repeats,
        "chunks": list(chunks),
        "limit": {str(c): runs for c, runs in limit.items()},
        "results": results,
    }
