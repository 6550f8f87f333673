"""snippets/object_storage.py over sockets: Werkzeug's threaded server (what
``flask run`` uses) in this process, the S3 server (moto) in its own, so the
test sees this process's own connections to the store."""

import time
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from snippets.object_storage import app
from tests.files.test_object_storage import storage
from tests.servers import open_request, read_until, wait_until, werkzeug_server

pytestmark = pytest.mark.live

VIDEO = b"\x01" * (20 * 2**20)


def connections_to(server):
    """This process's open TCP connections to the S3 server."""
    port = urlsplit(server.url).port
    return [
        c
        for c in psutil.Process().net_connections("tcp")
        if c.raddr and c.raddr.port == port and c.status == "ESTABLISHED"
    ]


def test_the_s3_connection_closes_when_the_client_leaves():
    """The client reads 1 MB of 20 MB and hangs up. The server's next write
    fails, it closes the generator, ``closing(body)`` closes botocore's
    StreamingBody, and its unread connection is closed, not put back in the
    pool (measured: gone 0.01 s after the hang-up)."""
    with storage(video_mp4=VIDEO) as server, werkzeug_server(app) as url:
        with open_request(url, "/files/video.mp4") as sock:
            received = read_until(sock, b"\r\n\r\n")
            while len(received) < 2**20:
                received += sock.recv(65536)
            assert len(connections_to(server)) == 1  # the body being read
            left = time.monotonic()
        assert wait_until(lambda: connections_to(server) == [], 10)
        print(f"closed within {time.monotonic() - left:.3f} s")


def test_the_presigned_link_serves_the_object_and_ranges_from_the_store():
    """The redirect sends the client to the store itself, which answers
    Range requests on its own."""
    with storage(video_mp4=VIDEO), werkzeug_server(app) as url:
        whole = httpx.get(f"{url}/links/video.mp4", follow_redirects=True)
        part = httpx.get(
            f"{url}/links/video.mp4",
            headers={"Range": "bytes=100-199"},
            follow_redirects=True,
        )
    assert whole.status_code == 200 and whole.content == VIDEO
    assert part.status_code == 206 and part.content == VIDEO[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(VIDEO)}"
    assert str(whole.history[0].url).startswith(url)  # it went via the app
