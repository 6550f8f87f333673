"""formats/mjpeg_shared in Chromium: an <img> on a page plays the shared
camera's stream, and closing the page lets the camera close. Werkzeug's
threaded server runs in this process, so the test reads the camera's
state."""

import io
import time

import pytest
from PIL import Image, ImageChops

from snippets import mjpeg_shared
from snippets.mjpeg_shared import app
from tests.formats.test_mjpeg_shared import fresh_camera
from tests.servers import serve, wait_until

pytestmark = pytest.mark.browser

VIEWER = '<!doctype html><img id="video" src="/stream.mjpg" alt="camera">'


@pytest.fixture
def camera(monkeypatch):
    with fresh_camera(monkeypatch) as fresh:
        yield fresh


def img_pixels(locator):
    return Image.open(io.BytesIO(locator.screenshot())).convert("RGB")


def test_img_plays_the_shared_camera_and_closing_the_page_closes_it(page, camera):
    """The page's <img> decodes the first part (its natural size is the
    camera's 160 x 90), then shows a different frame while the camera's
    counter advances, all from one opening of the camera. Closing the page
    drops the viewer, and the camera closes within IDLE_SECONDS (0.3 s
    here) plus the time the server takes to notice (measured: 0.32 to 0.60 s)."""
    with serve("werkzeug", app) as server:
        # The viewer page comes from the app's own origin, as a reader's would.
        page.route(
            f"{server.url}/viewer",
            lambda route: route.fulfill(body=VIEWER, content_type="text/html"),
        )
        page.goto(f"{server.url}/viewer")
        video = page.locator("#video")
        page.wait_for_function(
            "document.getElementById('video').naturalWidth === 160",
            timeout=15_000,
        )
        first, number = img_pixels(video), camera.number
        assert first.size == (160, 90)
        changed = None
        deadline = time.monotonic() + 10
        while changed is None and time.monotonic() < deadline:
            page.wait_for_timeout(100)
            changed = ImageChops.difference(first, img_pixels(video)).getbbox()
        assert changed is not None, "the img kept showing the first frame"
        left, top, right, bottom = changed
        assert (right - left) * (bottom - top) > 1000  # not a stray pixel
        assert camera.number > number and camera.running
        assert camera.opened == 1 and camera.viewers >= 1

        page.close()
        closed = time.monotonic()
        assert wait_until(lambda: not camera.running, 10)
        closed_after = time.monotonic() - closed
        print(f"camera closed {closed_after:.2f} s after the page closed")
        assert camera.viewers == 0 and camera.opened == 1
        assert closed_after < mjpeg_shared.IDLE_SECONDS + 2
