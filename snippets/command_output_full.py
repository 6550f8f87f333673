"""A command's output streamed line by line as NDJSON, from a fixed allow-list,
with stderr and the exit status in-band; the command and every process it
started are killed when the client leaves or its time is up."""

import json
import logging
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
from contextlib import suppress

from flask import Flask, Response, abort
from werkzeug.exceptions import ServiceUnavailable

from snippets.checks import whole_number

app = Flask(__name__)
app.logger.setLevel(logging.INFO)  # Flask shows only warnings unless debugging

HEARTBEAT = 1.0  # seconds of silence before a heartbeat record
GRACE = 2.0  # seconds a command gets to exit after SIGTERM
MAX_N = 10_000_000
MAX_RUNNING = 8  # commands at once; one more is a 503 with Retry-After
MAX_LINE = 64 * 1024  # a longer line is sent in pieces of this many bytes
running = threading.BoundedSemaphore(MAX_RUNNING)

# [commands]
# Stand-ins for real tools (a build, a report): three small Python programs
# and two from coreutils. "-u": Python writes what it prints at once,
# instead of when its buffer is full.
PY = [sys.executable, "-u", "-c"]
COUNT = "import sys\nfor i in range(int(sys.argv[1])): print('line', i + 1)"
FAIL = "import sys\nprint('checking', sys.argv[1]); sys.exit('disk full')"
# "tree" and its child share one pipe, so each writes a line in one write():
# print() makes one per piece, and the other's line can land between them.
TREE = """import os, signal, subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", "import os, signal, time;"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN);"
    "os.write(1, b'worker ready' + os.linesep.encode()); time.sleep(600)"
])  # a child of the command that ignores SIGTERM
os.write(1, f"pids {os.getpid()} {worker.pid}\\n".encode())
for i in range(int(sys.argv[1])):
    os.write(1, f"tick {i + 1}\\n".encode())
    time.sleep(0.1)
worker.kill()
"""
PROGRESS = """import sys, time
for i in range(int(sys.argv[1])):
    print(f"\\r{i + 1} of {sys.argv[1]}", end="")
    time.sleep(0.1)
print()
"""
# name: (argv without its last argument, seconds the command may run)
COMMANDS = {
    "count": ([*PY, COUNT], 5),
    "fail": ([*PY, FAIL], 5),
    "tree": ([*PY, TREE], 30),
    "sleep": (["sleep"], 2),  # any program on the PATH works the same way
    "yes": (["yes"], 3),  # endless output, as fast as it can be read
    "progress": ([*PY, PROGRESS], 5),  # "\r" ends each update, not "\n"
}
# [commands-end]


# [start]
def start(argv):
    return subprocess.Popen(
        argv,  # a list, no shell: nothing in it is ever parsed as shell syntax
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # Only what the command needs: not the app's secrets. PYTHONUNBUFFERED
        # also reaches Python programs that the command starts.
        env={"PATH": os.defpath, "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"},
        start_new_session=True,  # its own process group, for its children too
    )


def stop(proc):
    """End the command and every process in its group."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(GRACE)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # what ignored SIGTERM, or lingers
    proc.wait()


# [start-end]


# [output]
LINE_END = re.compile(rb"\r\n|\r|\n")


class Lines:
    """A pipe's bytes as lines. A line ends at "\n", "\r\n" or "\r" (a
    progress bar redraws itself with "\r"), or after MAX_LINE bytes: what
    waits for the rest of a line is never more than that."""

    def __init__(self):
        self.held, self.after_cr = b"", False

    def feed(self, data):
        if self.after_cr and data.startswith(b"\n"):
            data = data[1:]  # the "\n" of a "\r\n" cut between two reads
        self.after_cr = data.endswith(b"\r")
        *lines, self.held = LINE_END.split(self.held + data)
        while len(self.held) >= MAX_LINE:
            lines.append(self.held[:MAX_LINE])
            self.held = self.held[MAX_LINE:]
        return lines

    def end(self):
        return [self.held] if self.held else []  # a last line with no end


def output(proc):
    """Yield lists of (stream, line) as the pipes deliver them, and an empty
    list after HEARTBEAT seconds of silence. Ends when both pipes close."""
    pending = {proc.stdout: Lines(), proc.stderr: Lines()}
    names = {proc.stdout: "stdout", proc.stderr: "stderr"}
    with selectors.DefaultSelector() as selector:
        for pipe in pending:
            selector.register(pipe, selectors.EVENT_READ)
        while selector.get_map():
            ready = selector.select(HEARTBEAT)
            lines = []
            for key, _ in ready:
                pipe = key.fileobj
                data = os.read(key.fd, 65536)
                if data:
                    complete = pending[pipe].feed(data)
                else:  # closed: by the command and all its children
                    selector.unregister(pipe)
                    complete = pending[pipe].end()
                lines += [
                    (names[pipe], line.decode(errors="replace")) for line in complete
                ]
            if lines or not ready:
                yield lines


# [output-end]


# [view]
@app.get("/run/<name>")
def run(name):
    if name not in COMMANDS:
        abort(404, f"no command named {name!r}")
    n = whole_number("n", 1, MAX_N, default=3)
    argv, seconds = COMMANDS[name]
    argv = [*argv, str(n)]  # the only value from the request, checked
    if not running.acquire(blocking=False):
        raise ServiceUnavailable("too many commands are running", retry_after=5)
    once = threading.Lock()

    def free():  # the slot, once: when the stream ends, or if it never starts
        if once.acquire(blocking=False):
            running.release()

    def stream():
        # Started here, not in the view: a body that is never iterated (the
        # answer to a HEAD request) starts nothing, so it leaves nothing behind.
        proc = start(argv)
        expired = threading.Event()

        def expire():  # runs in the timer's thread, even while we wait to write
            expired.set()
            stop(proc)

        timer = threading.Timer(seconds, expire)
        timer.start()
        try:
            for lines in output(proc):
                # What one read returned goes out as one chunk; silence, as a
                # heartbeat, so a client that left is noticed.
                chunk = "".join(json.dumps({s: line}) + "\n" for s, line in lines)
                yield chunk or '{"heartbeat": true}\n'
            status = {"exit": proc.wait(), "timed_out": expired.is_set()}
            yield json.dumps(status) + "\n"  # no such record: the stream was cut
        finally:
            timer.cancel()
            stop(proc)  # the client left, the time ran out, or it ended
            free()
            app.logger.info("cleaned up %s: exit %s", name, proc.returncode)

    response = Response(stream(), mimetype="application/x-ndjson")
    response.call_on_close(free)  # a body never iterated (HEAD) has no finally
    return response


# [view-end]
