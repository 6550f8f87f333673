"""snippets/mjpeg_shared.py over sockets, on Werkzeug's threaded server in
this process, so the test can read the camera's state."""

import time

import pytest

from snippets import mjpeg_shared
from snippets.mjpeg_shared import app
from tests.formats.test_mjpeg_shared import PART, fresh_camera
from tests.servers import open_request, read_until, wait_until, werkzeug_server

pytestmark = pytest.mark.live


@pytest.fixture
def camera(monkeypatch):
    with fresh_camera(monkeypatch) as fresh:
        yield fresh


def test_one_camera_for_many_viewers_closed_after_the_last_leaves(camera):
    """Five viewers over sockets share one opening of the camera. After the
    last hangs up, the camera closes within IDLE_SECONDS plus the time the
    server takes to notice (measured: 0.35 s with IDLE_SECONDS = 0.3)."""
    with werkzeug_server(app) as url:
        sockets = [open_request(url, "/stream.mjpg") for _ in range(5)]
        for sock in sockets:
            received = read_until(sock, PART)
            read_until(sock, PART, received.partition(PART)[2])
        assert camera.opened == 1 and camera.viewers == 5
        for sock in sockets:
            sock.close()
        left = time.monotonic()
        assert wait_until(lambda: not camera.running, 10)
        closed_after = time.monotonic() - left
        assert camera.viewers == 0 and camera.opened == 1
        print(f"camera closed {closed_after:.2f} s after the last viewer left")
        assert closed_after < mjpeg_shared.IDLE_SECONDS + 2
        with open_request(url, "/stream.mjpg") as sock:
            read_until(sock, PART)  # a new viewer opens it again
        assert camera.opened == 2
