"""When the client goes away: the generator is closed at its next write,
or never, if it writes nothing. Adds ``/wait`` to snippets/lifecycle.py's app,
so that one app records the whole order (lifecycle.py imports it)."""

import time

from flask import abort, request, stream_with_context

from snippets.checks import whole_number
from snippets.lifecycle import app, record, respond

__all__ = ["app"]


# [disconnect]
@app.get("/wait")
def wait():
    seconds = whole_number("seconds", 1, 30)
    if request.args.get("beat") not in {"yes", "no"}:
        abort(400, "beat must be yes or no")
    chunk = ": still here\n" if request.args["beat"] == "yes" else ""

    def generate(deadline):
        record("body starts")
        try:
            while time.monotonic() < deadline:
                yield chunk  # "" writes nothing: a gone client is not noticed
                time.sleep(0.05)
            yield "done\n"
            record("body ends")
        except GeneratorExit:
            record("client gone")
            raise
        finally:
            record("generator finally")

    deadline = time.monotonic() + seconds
    return respond(stream_with_context(generate(deadline)))


# [disconnect-end]
