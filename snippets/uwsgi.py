"""A stream and a download to serve with uWSGI: each event says when it was
made, and each stream records how its generator ended, so the tests on
deploy/uwsgi can tell what the server did with it."""

import threading
import time
from collections import deque
from pathlib import Path

from flask import Flask, Response, abort, jsonify, request, send_from_directory

from snippets.checks import whole_number

app = Flask(__name__)
app.config["FILES_DIR"] = str(Path(__file__).parent / "files")
app.config.from_prefixed_env()  # FLASK_FILES_DIR=/srv/files overrides it

MAX_COUNT = 100_000
MAX_MS = 10_000
MAX_PAD = 65_536

_lock = threading.Lock()
_ended: deque = deque(maxlen=1_000)  # (stream id, how it ended), this process


# [events]
@app.get("/events")
def events():
    count = whole_number("count", 0, MAX_COUNT, default=3)  # then "end"
    interval = whole_number("interval_ms", 0, MAX_MS, default=1000) / 1000
    pad = "." * whole_number("pad", 0, MAX_PAD, default=0)  # filler bytes
    stream_id = request.args.get("id", "")[:32]

    def generate():
        sent, how = 0, "completed"
        try:
            for sent in range(1, count + 1):
                if sent > 1:
                    time.sleep(interval)
                yield f"data: {sent} {time.time():.6f} {pad}\n\n"
            # In-band proof of a whole stream: a cut body can look complete.
            yield "event: end\ndata: complete\n\n"
        except GeneratorExit:  # uWSGI closed the response: the client left
            how = "GeneratorExit"
            raise
        finally:
            with _lock:
                _ended.append((stream_id, {"how": how, "sent": sent}))

    return Response(
        generate(),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# [events-end]


@app.get("/ended/<stream_id>")
def ended(stream_id):
    with _lock:
        found = [e for s, e in _ended if s == stream_id]
    if not found:
        abort(404, "that stream has not ended (yet)")
    return jsonify(found[-1])


# [download]
@app.get("/files/<path:name>")
def download(name):
    # send_file hands the open file to uWSGI's wsgi.file_wrapper.
    return send_from_directory(app.config["FILES_DIR"], name)


# [download-end]


@app.get("/ping")
def ping():
    return "pong\n"
