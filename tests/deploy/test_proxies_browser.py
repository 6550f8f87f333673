"""Chromium's MIME sniffing holds back a small text/plain chunk unless the
response says ``X-Content-Type-Options: nosniff``. Proof for deploy/proxies.

The stream is shown in an iframe (same origin) so that the test can read what
the browser has rendered while the response is still open.
"""

import threading
import time

import pytest
from flask import Flask, Response, request
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from snippets.proxies import app as headers_app

pytestmark = pytest.mark.browser

SMALL = "first line\n"  # 11 bytes
LARGE = SMALL + "x" * 2048 + "\n"


def gated_app(first_written, release):
    """/plain: a first chunk, then nothing until the test says so."""
    app = Flask(__name__)

    @app.get("/frame")
    def frame():
        return '<iframe id="f"></iframe>'

    @app.get("/plain")
    def plain():
        first = LARGE if request.args.get("size") == "large" else SMALL

        def generate():
            yield first
            first_written.set()  # runs only once the server wrote the chunk
            release.wait(timeout=20)
            yield "last line\n"

        headers = {}
        if request.args.get("nosniff") == "1":
            headers["X-Content-Type-Options"] = "nosniff"
        return Response(generate(), mimetype="text/plain", headers=headers)

    return app


def rendered(page):
    return page.evaluate(
        """() => {
            const doc = document.getElementById('f').contentDocument;
            return doc && doc.body ? doc.body.innerText : '';
        }"""
    )


def wait_for_text(page, text, seconds):
    """The iframe's text as soon as it contains ``text``, or at the deadline."""
    deadline = time.monotonic() + seconds
    while text not in (shown := rendered(page)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return shown


def load(page, url, src):
    """Open the frame page, then point its iframe at the stream: goto would
    wait for the iframe's load event, which comes when the stream ends."""
    page.goto(f"{url}/frame", wait_until="domcontentloaded")
    page.evaluate(f"document.getElementById('f').src = '{src}'")


@pytest.fixture
def gated(live_server):
    first_written, release = threading.Event(), threading.Event()
    url = live_server(gated_app(first_written, release))
    yield url, first_written, release
    release.set()


def test_small_plain_chunk_is_held_without_nosniff(page, gated):
    url, first_written, release = gated
    load(page, url, "/plain?nosniff=0")
    assert first_written.wait(timeout=10)
    assert wait_for_text(page, "first", seconds=2) == ""  # sent, not shown
    release.set()
    assert "last line" in wait_for_text(page, "last line", seconds=10)


def test_small_plain_chunk_shows_at_once_with_nosniff(page, gated):
    url, _, release = gated
    load(page, url, "/plain?nosniff=1")
    assert wait_for_text(page, "first", seconds=10) == "first line\n"
    assert not release.is_set()  # the generator is still waiting


def test_large_first_chunk_shows_without_nosniff(page, gated):
    """The browser holds bytes while it sniffs; 2 KiB is enough to decide."""
    url, _, release = gated
    load(page, url, "/plain?nosniff=0&size=large")
    assert wait_for_text(page, "first", seconds=10).startswith("first line\nxxx")
    assert not release.is_set()


def test_progress_snippet_renders_each_step_as_it_arrives(page, live_server):
    """The snippet's /progress (nosniff): step 1 is on screen before step 2
    is made (each line says when the server made it)."""
    site = Flask(__name__)
    site.get("/frame")(lambda: '<iframe id="f"></iframe>')
    site.wsgi_app = DispatcherMiddleware(site.wsgi_app, {"/app": headers_app})
    load(page, live_server(site), "/app/progress?steps=2&interval_ms=1500")
    assert "step 1 of 2" in wait_for_text(page, "step 1", seconds=10)
    step_1_shown = time.time()
    text = wait_for_text(page, "step 2", seconds=10)
    step_2_made = float(text.split("step 2 of 2 at ")[1])
    assert step_1_shown < step_2_made
