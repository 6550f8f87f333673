"""The version boundary the lifecycle page states, tested on both sides.

With :func:`flask.stream_with_context`, Flask 3.1.1 ran teardown once, when
the stream ended; since 3.1.2 (the fix for async views, pallets/flask#5774)
it runs twice: when the view returns and again when the generator ends. The
locked Flask is tested in tests/test_lifecycle.py; here each older release is
fetched on its own from the package index into a temporary folder and put in
front of the locked Werkzeug, Jinja and friends.
"""

import ast
import os
import subprocess
import sys

import pytest

from tests.servers import STRICT

SCRIPT = """
from importlib.metadata import version
from flask import Flask, stream_with_context

app = Flask(__name__)
events = []

@app.teardown_request
def teardown(exc):
    events.append("teardown")

@app.get("/")
def view():
    def generate():
        events.append("body starts")
        yield "x"
    return stream_with_context(generate())

with app.test_client().get("/") as response:
    response.get_data()
print(repr((version("flask"), events)))
"""


def run_with_flask(release, folder):
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--only-binary", ":all:", "--target", str(folder), f"flask=={release}"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    if install.returncode != 0:
        reason = f"could not fetch flask=={release}: {install.stderr.strip()[-300:]}"
        if STRICT:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    env = {**os.environ, "PYTHONPATH": str(folder)}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return ast.literal_eval(result.stdout.strip())


@pytest.mark.parametrize(
    ("release", "events"),
    [
        ("3.1.1", ["body starts", "teardown"]),
        ("3.1.2", ["teardown", "body starts", "teardown"]),
    ],
)
def test_teardown_count_with_stream_with_context_changed_in_3_1_2(
    tmp_path, release, events
):
    assert run_with_flask(release, tmp_path) == (release, events)
