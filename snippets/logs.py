"""A client that leaves mid-stream is an expected end, not an error: log it
once at INFO from the generator, and keep the servers' own noise out of
error tracking."""

# [recipe]
import logging
import time

from flask import Flask, Response

app = Flask(__name__)
log = logging.getLogger(__name__)

TICK_SECONDS = 0.05


@app.get("/stream")
def stream():
    def generate():
        n = 0
        try:
            while True:
                n += 1
                yield f"line {n}\n"
                time.sleep(TICK_SECONDS)
        except GeneratorExit:
            # The server closed us: the client left. Expected.
            log.info("client left after %d lines", n)
            raise

    return Response(generate(), mimetype="text/plain")


# [recipe-end]
