# gunicorn.conf.py: gunicorn for long-lived streams (SSE, big exports).
# Run: gunicorn -c gunicorn.conf.py app:app
# Size it with the environment, not by editing this file.
import os

# A thread per stream; the timeout is the worker's heartbeat,
# not a limit on how long a request may take.
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "32"))

# gthread: a stream may outlast this (sync would kill it).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30  # on SIGTERM, streams get this long
keepalive = 5  # seconds an idle connection stays open
