"""snippets/writers.py over sockets, on Werkzeug's threaded server (what
``flask run`` uses) in this process, so the test can count the writer
threads and look at their stacks."""

import pytest

from snippets.writers import CHUNK_BYTES, app
from tests.formats.test_writers import blocked_in_put, writer_threads
from tests.servers import open_request, read_until, wait_until, werkzeug_server

pytestmark = pytest.mark.live

ENDLESS = "/rows.csv?rows=10000000"  # 230 MB: no client here reads it all


def test_a_slow_client_blocks_the_writer_and_its_hang_up_ends_the_thread():
    """The client reads the headers and stops. The writer fills the socket's
    buffers and the queue, then waits in put(): back-pressure. The client
    hangs up; the server's next write fails, it closes the generator, and
    the writer thread ends."""
    with werkzeug_server(app) as url:
        with open_request(url, ENDLESS) as sock:
            read_until(sock, b"n,square")
            assert wait_until(lambda: len(writer_threads()) == 1)
            (thread,) = writer_threads()
            assert wait_until(lambda: blocked_in_put(thread))
        assert wait_until(lambda: not thread.is_alive(), 10)
    assert writer_threads() == []


def test_no_writer_thread_is_left_after_clients_hang_up():
    """Ten clients each read a few chunks of a 230 MB CSV and leave: no
    writer thread is left (measured: 0 of 10)."""
    with werkzeug_server(app) as url:
        for _ in range(10):
            with open_request(url, ENDLESS) as sock:
                received = b""
                while len(received) < 3 * CHUNK_BYTES:
                    received += sock.recv(65536)
        assert wait_until(lambda: writer_threads() == [], 10)
