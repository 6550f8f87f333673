"""A stream that survives restarts: it notices that its worker is stopping,
ends with a retry hint, and the browser resumes on the new worker."""

# [recipe]
import threading
import time

from flask import Flask, Response

app = Flask(__name__)
shutdown = threading.Event()  # set when this worker must stop
TICK_SECONDS = 1.0


def post_worker_init(worker):
    """A gunicorn hook, called in each worker once the app is
    loaded: ``gunicorn -c python:app app:app``."""

    def watch():
        # gunicorn sets worker.alive to False on every way out:
        # SIGTERM, a SIGHUP reload, max_requests, SIGQUIT, SIGINT.
        while worker.alive:
            time.sleep(0.1)
        shutdown.set()

    threading.Thread(target=watch, daemon=True).start()


@app.get("/clock")
def clock():
    def generate():
        yield "retry: 250\n\n"  # reconnect 250 ms after the end
        n = 0
        while not shutdown.wait(TICK_SECONDS):  # or at shutdown
            n += 1
            yield f"id: {n}\ndata: tick {n}\n\n"
        yield "event: bye\ndata: restarting\n\n"

    return Response(generate(), mimetype="text/event-stream")


# [recipe-end]

import json  # noqa: E402  (the full stream: resume from Last-Event-ID)
import logging  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402

from flask import render_template  # noqa: E402

from snippets.checks import whole_number  # noqa: E402

app.logger.setLevel(logging.INFO)

TICK_MS = int(os.environ.get("GRACEFUL_TICK_MS", "1000"))  # one event per tick
RETRY_MS = 250  # the browser waits this long (plus jitter) to reconnect
HEARTBEAT_SECONDS = 15.0
MAX_BACKLOG = 10_000  # events a reconnecting client may catch up on


def current_tick():
    """Event n happens at n * TICK_MS ms after the epoch, whoever listens, in
    every process: a stand-in for a log you can read from any position."""
    return int(time.time() * 1000) // TICK_MS


def event(name, data, **fields):
    lines = [f"{key}: {value}" for key, value in fields.items()]
    return "\n".join([f"event: {name}", *lines, f"data: {json.dumps(data)}"]) + "\n\n"


# [events]
@app.get("/events")
def events():
    now = current_tick()  # a new client starts from now; one that resumes
    # from one of the last MAX_BACKLOG events, or gets a 400
    last = whole_number(
        "Last-Event-ID", now - MAX_BACKLOG, now, default=now, source="headers"
    )

    def generate():
        n, how = last, "ended"  # n: the last event this client has
        try:
            yield f"retry: {RETRY_MS}\n\n"  # sends the headers at once
            while not shutdown.is_set():  # checked before every event
                if n < current_tick():  # catch up first, then live
                    n += 1
                    yield event("tick", {"n": n, "pid": os.getpid()}, id=n)
                    continue
                wait = (n + 1) * TICK_MS / 1000 - time.time()
                # Wait for the next event OR for shutdown, never for a sleep.
                woken = shutdown.wait(min(max(wait, 0), HEARTBEAT_SECONDS))
                if not woken and wait > HEARTBEAT_SECONDS:
                    yield ": keep-alive\n\n"
            how = "shutdown"
            # Jitter: a thousand clients must not all come back at once.
            retry = RETRY_MS + random.randrange(RETRY_MS)
            yield event("bye", {"after": n}, retry=retry)
        except BaseException as exc:  # GeneratorExit, SystemExit, GreenletExit
            how = type(exc).__name__
            raise
        finally:
            app.logger.info("stream %s after event %d (pid %d)", how, n, os.getpid())

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(generate(), mimetype="text/event-stream", headers=headers)


# [events-end]


@app.get("/")
def demo():
    return render_template("graceful_demo.html")
