"""snippets/mjpeg_shared.py: one camera for many MJPEG viewers, in-process
: a viewer whose generator is not advanced stands for one whose write is
blocked (both sit at the same ``yield``)."""

import contextlib
import io
import threading

import pytest
from PIL import Image

from snippets import mjpeg_shared
from snippets.mjpeg_shared import Camera
from tests.servers import wait_until

PART = b"--frame\r\nContent-Type: image/jpeg\r\n\r\n"


@contextlib.contextmanager
def fresh_camera(monkeypatch):
    """A fresh camera, faster and quicker to close than the snippet's; it
    must have closed by the end."""
    monkeypatch.setattr(mjpeg_shared, "FPS", 50)
    monkeypatch.setattr(mjpeg_shared, "IDLE_SECONDS", 0.3)
    fresh = Camera()
    monkeypatch.setattr(mjpeg_shared, "camera", fresh)
    yield fresh
    assert wait_until(lambda: not fresh.running, 10)


@pytest.fixture
def camera(monkeypatch):
    with fresh_camera(monkeypatch) as fresh:
        yield fresh


def check_jpeg(part):
    """The part holds one whole, valid JPEG."""
    jpeg = part.removeprefix(PART).removesuffix(b"\r\n")
    Image.open(io.BytesIO(jpeg)).verify()


def test_each_part_is_a_valid_jpeg(camera):
    viewer = camera.frames()
    part = next(viewer)
    assert part.startswith(PART)
    check_jpeg(part)
    viewer.close()


def test_a_stalled_viewer_does_not_hold_up_the_camera_or_the_others(camera):
    """The stalled viewer takes one frame and is never advanced again; the
    camera goes on, and the other viewer gets 20 new frames in a row."""
    stalled = camera.frames()
    next(stalled)
    at_stall = camera.number
    other = camera.frames()
    numbers = []
    for _ in range(20):
        next(other)
        numbers.append(camera.number)
    assert camera.number >= at_stall + 20
    assert numbers == sorted(set(numbers))  # a new frame every time
    stalled.close()
    other.close()


def test_a_slow_viewer_skips_frames_instead_of_queueing_them(camera):
    viewer = camera.frames()
    next(viewer)
    before = camera.number
    assert wait_until(lambda: camera.number >= before + 5)
    next(viewer)  # the newest frame, not the next one
    assert camera.number >= before + 5
    viewer.close()


def test_a_viewer_gives_up_on_a_silent_camera(camera, monkeypatch):
    """The device stops delivering after the first frame: the viewer's
    generator ends after WAIT_SECONDS without a frame, and counts out."""
    release = threading.Event()
    capture = camera.capture

    def stuck(n):
        if n > 1:
            release.wait(10)
        return capture(n)

    monkeypatch.setattr(camera, "capture", stuck)
    monkeypatch.setattr(mjpeg_shared, "WAIT_SECONDS", 0.2)
    viewer = camera.frames()
    assert next(viewer).startswith(PART)
    assert next(viewer, None) is None
    assert camera.viewers == 0
    release.set()
