"""A command's output streamed line by line, from a fixed allow-list; the
command and its children are killed when the client leaves.
snippets/command_output_full.py adds stderr apart, heartbeats and deadlines."""

# [recipe]
import json
import os
import signal
import subprocess
import threading
from contextlib import suppress

from flask import Flask, Response, abort
from werkzeug.exceptions import ServiceUnavailable

app = Flask(__name__)

# Whole commands, chosen by name: nothing from the request.
COMMANDS = {
    "disk": ["df", "-h"],
    "count": ["seq", "1", "5"],
}
MAX_LINE = 64 * 1024  # a longer line comes in pieces
running = threading.BoundedSemaphore(8)  # commands at once


@app.get("/run", defaults={"name": "disk"})
@app.get("/run/<name>")
def run(name):
    if name not in COMMANDS:
        abort(404, f"no command named {name!r}")
    if not running.acquire(blocking=False):
        raise ServiceUnavailable("too busy", retry_after=5)
    body = Response(lines(COMMANDS[name]))
    body.mimetype = "application/x-ndjson"
    body.call_on_close(running.release)
    return body


def lines(argv):
    proc = subprocess.Popen(
        argv,  # a list, no shell
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,  # "\n", "\r\n" and "\r" end a line
        errors="replace",
        env={"PATH": os.defpath},  # not the app's secrets
        start_new_session=True,  # a group, children too
    )
    try:
        while line := proc.stdout.readline(MAX_LINE):
            record = {"line": line.rstrip("\n")}
            yield json.dumps(record) + "\n"
        yield json.dumps({"exit": proc.wait()}) + "\n"
    finally:  # done, or the client left: end the group
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# [recipe-end]
