"""formats/mjpeg in Chromium: the <img> really plays the stream."""

import io
import time

import pytest
from PIL import Image, ImageChops

from snippets.mjpeg import app

pytestmark = pytest.mark.browser


def img_pixels(locator):
    return Image.open(io.BytesIO(locator.screenshot())).convert("RGB")


def test_img_shows_mjpeg_frames_that_change(page, live_server):
    url = live_server(app)
    page.goto(f"{url}/?fps=10")
    video = page.locator("#video")
    # The first part has been decoded once the img has its natural size.
    page.wait_for_function(
        "document.getElementById('video').naturalWidth === 320", timeout=15_000
    )
    first = img_pixels(video)
    assert first.width == 320
    # A sizeable area differs from the first frame within a few seconds (the
    # counter and clock are redrawn in every frame; the background shifts).
    deadline, changed = time.monotonic() + 10, None
    while time.monotonic() < deadline:
        page.wait_for_timeout(200)
        later = img_pixels(video)
        box = ImageChops.difference(first, later).getbbox()
        if box is not None:
            changed = box
            break
    assert changed is not None, "the img kept showing the first frame"
    left, top, right, bottom = changed
    assert (right - left) * (bottom - top) > 1000  # not a stray pixel
    # Still one request: the browser swaps parts in, it does not reload.
    assert (
        page.evaluate(
            "performance.getEntriesByType('resource')"
            ".filter(e => e.name.includes('stream.mjpg')).length"
        )
        <= 1
    )
