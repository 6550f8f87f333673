"""formats/mjpeg and formats/zip over real servers."""

import pytest

from tests.servers import gunicorn, open_request

pytestmark = pytest.mark.live


STREAM = "/stream.mjpg?fps=5"


def open_viewer(url, path=STREAM):
    return open_request(url, path, timeout=20)


def status_line(sock):
    data = b""
    while b"\r\n" not in data:
        piece = sock.recv(1)
        if not piece:
            raise ConnectionError("closed before the status line")
        data += piece
    return data.decode().strip()


def test_third_viewer_waits_for_a_free_gthread_thread():
    """gthread with --threads 2: two open MJPEG streams take both threads;
    a third request (even for the HTML page) is accepted but not answered
    until a viewer leaves."""
    with gunicorn(
        "snippets.mjpeg:app", worker_class="gthread", args=("--threads", "2")
    ) as (url, _proc):
        first, second = open_viewer(url), open_viewer(url)
        assert status_line(first) == "HTTP/1.1 200 OK"
        assert status_line(second) == "HTTP/1.1 200 OK"
        third = open_viewer(url, "/")
        third.settimeout(3)
        with pytest.raises(TimeoutError):
            third.recv(1)  # 3 s of silence: no thread is free to answer
        first.close()  # the first viewer leaves ...
        third.settimeout(20)
        assert status_line(third) == "HTTP/1.1 200 OK"  # ... its thread serves
        second.close()
        third.close()


def test_with_threads_equal_to_viewers_plus_one_nobody_waits():
    with gunicorn(
        "snippets.mjpeg:app", worker_class="gthread", args=("--threads", "3")
    ) as (url, _proc):
        viewers = [open_viewer(url), open_viewer(url)]
        for viewer in viewers:
            assert status_line(viewer) == "HTTP/1.1 200 OK"
        page = open_viewer(url, "/")
        page.settimeout(10)
        assert status_line(page) == "HTTP/1.1 200 OK"
        for sock in [*viewers, page]:
            sock.close()
