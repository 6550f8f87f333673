"""deploy/uwsgi in process: the snippet's checks, and the arithmetic behind
the nginx buffering table that tests/deploy/test_uwsgi_live.py measures."""

import math
import os

import pytest

from snippets.uwsgi import app
from tests.deploy.test_uwsgi_live import HEAD_BYTES, HELD, HELD_8K, PAGE

client = app.test_client()


@pytest.mark.parametrize(
    "query",
    [
        "count=many",
        "count=-1",
        "count=100001",
        "interval_ms=10001",
        "pad=" + "9" * 5000,
    ],
)
def test_bad_numbers_are_a_400_before_the_stream(query):
    response = client.get(f"/events?{query}")
    assert response.status_code == 400


def test_an_unknown_stream_or_file_is_a_404():
    assert client.get("/ended/nobody").status_code == 404
    assert client.get("/files/../conftest.py").status_code == 404


def test_a_download_and_a_ping():
    assert client.get("/files/alphabet.txt").data.startswith(b"a")
    assert client.get("/ping").data == b"pong\n"


def test_a_memory_page_is_4096_bytes_here():
    assert os.sysconf("SC_PAGE_SIZE") == PAGE == 4096


def test_send_file_hands_the_file_to_wsgi_file_wrapper():
    """What lets uWSGI sendfile() or offload a download: Werkzeug's wrap_file
    uses the server's wsgi.file_wrapper when the server offers one."""
    wrapped = []

    def file_wrapper(file, block_size=8192):
        wrapped.append(file.name)
        return iter(lambda: file.read(block_size), b"")

    response = client.get(
        "/files/alphabet.txt", environ_base={"wsgi.file_wrapper": file_wrapper}
    )
    assert response.data.startswith(b"a")
    assert [os.path.basename(name) for name in wrapped] == ["alphabet.txt"]


def test_head_bytes_are_the_status_line_and_the_three_headers():
    """uWSGI's head for /events: what HEAD_BYTES says it is."""
    response = client.get("/events?count=1&interval_ms=0")
    head = "HTTP/1.1 200 OK\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in response.headers.items()
    )
    assert sorted(response.headers.keys()) == [
        "Cache-Control",
        "Content-Type",
        "X-Accel-Buffering",
    ]
    assert len(head) + 2 == HEAD_BYTES


def reaches_client_with(size, buffer, head=HEAD_BYTES, count=3):
    """The model the live test confirms: nginx passes on only full buffers of
    ``buffer`` bytes (the head is in the first one), and the rest at the end.
    Returns the number of events made when event 1 reaches the client."""
    needed = math.ceil((head + size) / buffer) * buffer  # fill event 1's buffer
    for made in range(1, count + 1):
        if head + made * size >= needed:
            return made
    return count  # the end of the stream flushes everything


@pytest.mark.parametrize(("sizes", "buffer"), [(HELD, PAGE), (HELD_8K, 2 * PAGE)])
def test_the_buffer_model_predicts_every_measured_case(sizes, buffer):
    assert {size: reaches_client_with(size, buffer) for size in sizes} == sizes
