"""Small, focused proofs for the claims on docs/myths.rst that no other page
settles (yet). Each test name states the verdict."""

import subprocess
import sys

import pytest
from flask import Flask, Response


def test_exception_mid_stream_keeps_200_and_skips_the_errorhandler():
    handled = []
    app = Flask(__name__)

    @app.errorhandler(Exception)
    def on_error(error):
        handled.append(error)
        return "something went wrong", 500

    @app.get("/")
    def view():
        def generate():
            yield "row 1\n"
            raise ValueError("row 2 is broken")

        return Response(generate(), mimetype="text/plain")

    response = app.test_client().get("/")
    assert response.status_code == 200  # decided before the first byte
    body = iter(response.response)
    assert next(body) == b"row 1\n"
    with pytest.raises(ValueError, match="row 2 is broken"):
        next(body)
    assert handled == []  # the status and headers are gone: nothing to replace


@pytest.mark.parametrize(("debug", "level"), [(False, "30"), (True, "10")])
def test_flask_logger_shows_only_warnings_unless_debug(debug, level):
    """lifecycle.rst: hence the snippet's setLevel(logging.INFO). A fresh
    interpreter, so that pytest's logging setup does not count."""
    code = (
        "from flask import Flask\n"
        f"app = Flask('x'); app.debug = {debug}\n"
        "print(app.logger.getEffectiveLevel())\n"
    )
    argv = [sys.executable, "-c", code]
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == level
