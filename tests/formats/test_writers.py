"""snippets/writers.py in-process: a writer API (zipfile, csv) turned into an
iterator by a thread and a bounded queue. Peak memory is measured with
tracemalloc (it traces the writer thread too); back-pressure is seen in the
writer thread's own stack: blocked in ``Queue.put``."""

import io
import sys
import threading
import tracemalloc
import zipfile

import pytest

from snippets import writers
from snippets.writers import CHUNK_BYTES, QUEUE_CHUNKS, app, iter_writer
from tests.servers import wait_until

client = app.test_client()
BIG_ROWS = 300_000  # a 6 MB CSV: held in memory, it could not hide


def writer_threads():
    return [t for t in threading.enumerate() if t.name == "iter_writer"]


def blocked_in_put(thread):
    """Whether ``thread`` is waiting inside ``queue.Queue.put``."""
    frame = sys._current_frames().get(thread.ident)
    while frame is not None:
        if frame.f_code.co_name == "put" and frame.f_code.co_filename.endswith(
            "queue.py"
        ):
            return True
        frame = frame.f_back
    return False


def drain(response):
    size = sum(len(chunk) for chunk in response.response)
    response.close()
    return size


def peak_while(read):
    tracemalloc.start()
    try:
        size = read()
        return size, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_report_is_a_valid_zip_of_the_csv(monkeypatch):
    monkeypatch.setattr(writers, "ROWS", 1000)
    response = client.get("/report.zip")
    assert response.headers["Content-Disposition"] == "attachment; filename=report.zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert archive.testzip() is None
    lines = archive.read("squares.csv").decode().splitlines()
    assert lines[:3] == ["n,square", "0,0", "1,1"]
    assert lines[-1] == "999,998001" and len(lines) == 1001


ZLIB_STATE = (1 << 17) + (1 << 18)


@pytest.mark.parametrize("path", ["/rows.csv?rows=300000", "/report.zip"])
def test_peak_memory_stays_flat_while_a_large_output_streams(monkeypatch, path):
    """The baseline, measured here too: the same writer into an io.BytesIO
    holds the whole output. Through the queue, the peak stays near
    QUEUE_CHUNKS x CHUNK_BYTES (measured: 0.46 MB for a 5.7 MB CSV, 0.69 MB
    for its 2.2 MB ZIP)."""
    monkeypatch.setattr(writers, "ROWS", BIG_ROWS)

    def in_memory():
        buffer = io.BytesIO()
        if path == "/report.zip":
            writers.write_report(buffer)
        else:
            with io.TextIOWrapper(buffer, "utf-8", newline="") as text:
                text.write("n,square\r\n")
                text.writelines(f"{n},{n * n}\r\n" for n in range(BIG_ROWS))
                text.flush()
                return len(buffer.getvalue())
        return len(buffer.getvalue())

    size, streamed_peak = peak_while(lambda: drain(client.get(path, buffered=False)))
    whole, buffered_peak = peak_while(in_memory)
    # A ZIP written to a file that can seek puts the sizes in its headers
    # instead of after each member: 16 bytes fewer.
    assert whole <= size <= whole + 16 and size > 2_000_000
    assert buffered_peak > whole  # the whole output was in memory
    # The queue, a chunk in the writer's hands and one in the client's, and
    # for the ZIP, zlib's deflate state at the default level: 128 KiB of
    # window and 256 KiB of hash (1 << 17 and 1 << 18). A clean-clone run
    # measured 804,124 bytes for the ZIP, above the 12 chunks this allowed.
    bound = (QUEUE_CHUNKS + 2) * CHUNK_BYTES + ZLIB_STATE
    assert streamed_peak < bound < buffered_peak / 2
    print(f"{path}: {size:,} bytes, peak {streamed_peak:,} (whole: {buffered_peak:,})")


def test_the_writer_blocks_while_the_client_does_not_read():
    """Take one chunk and stop: the writer fills the queue and waits in put(),
    having produced at most the queue, its buffer and one chunk in hand."""
    produced = []

    def write_rows(file):
        for n in range(BIG_ROWS):
            produced.append(file.write(b"%d,%d\r\n" % (n, n * n)))

    chunks = iter_writer(write_rows)
    assert 0 < len(next(chunks)) <= CHUNK_BYTES
    (thread,) = writer_threads()
    assert wait_until(lambda: blocked_in_put(thread))
    held = sum(produced)
    assert held <= (QUEUE_CHUNKS + 2) * CHUNK_BYTES + 64
    assert wait_until(lambda: blocked_in_put(thread))
    assert sum(produced) == held  # still waiting: nothing more was written
    chunks.close()  # what a server does when the client leaves
    assert not thread.is_alive() and writer_threads() == []
    assert len(produced) < BIG_ROWS


def test_closing_before_the_first_chunk_starts_no_thread():
    chunks = iter_writer(lambda file: file.write(b"x"))
    chunks.close()
    assert writer_threads() == []


def test_a_writer_error_ends_the_stream_with_that_error():
    def fails(file):
        file.write(b"a" * (CHUNK_BYTES + 1))
        raise ValueError("the report failed")

    chunks = iter_writer(fails)
    assert next(chunks)
    with pytest.raises(ValueError, match="the report failed"):
        list(chunks)
    assert writer_threads() == []


@pytest.mark.parametrize("rows", ["0", "x", "10000001"])
def test_a_bad_row_count_is_a_400(rows):
    response = client.get(f"/rows.csv?rows={rows}")
    assert response.status_code == 400
    assert b"rows must be a whole number from 1 to 10,000,000" in response.data


def test_tarfile_in_stream_mode_writes_through_the_queue():
    """tarfile's ``w|gz`` mode never seeks: it needs no more than write()."""
    import tarfile

    def write_tar(file):
        with tarfile.open(fileobj=file, mode="w|gz") as tar:
            data = b"hello\n" * 50_000
            info = tarfile.TarInfo("hello.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    archive = io.BytesIO(b"".join(iter_writer(write_tar)))
    with tarfile.open(fileobj=archive, mode="r:gz") as tar:
        assert tar.extractfile("hello.txt").read() == b"hello\n" * 50_000
    assert writer_threads() == []
