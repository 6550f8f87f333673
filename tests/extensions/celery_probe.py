"""A task the test worker imports (``--include tests.extensions.celery_probe``):
it tries everything a task might want from the request that queued it."""

import flask
from celery import shared_task


def attempt(read):
    try:
        return {"value": read()}
    except RuntimeError as exc:
        return {"error": str(exc).splitlines()[0]}


@shared_task(name="probe.request_context")
def request_context(session_copy):
    """Runs in the worker, inside the app context that FlaskTask pushes."""
    session_copy["plan"] = "pro"  # a plain dict, decoded from JSON
    return {
        "config": attempt(lambda: flask.current_app.config["REDIS_URL"][:8]),
        "session": attempt(lambda: flask.session.get("reports")),
        "request": attempt(lambda: flask.request.path),
        "copy": session_copy,
        "copy_type": type(session_copy).__name__,
    }
