# [recipe]
import contextlib
import csv
import io
import queue
import threading
import zipfile

from flask import Flask, Response

app = Flask(__name__)
CHUNK_BYTES = 64 * 1024  # what the writer hands over at once
QUEUE_CHUNKS = 8  # chunks waiting for the client, at most
ROWS = 100_000
DONE = object()


class QueueFile(io.RawIOBase):
    """A file whose writes go to a bounded queue: write()
    blocks while the queue is full (a slow client), and
    fails once the client has left."""

    def __init__(self, chunks, left):
        self.chunks, self.left = chunks, left

    def writable(self):
        return True

    def write(self, data):
        if self.left.is_set():
            raise BrokenPipeError("the client left")
        self.chunks.put(bytes(data))
        return len(data)


def iter_writer(write_to):
    """Run write_to(file) in a thread; yield what it writes."""
    chunks = queue.Queue(QUEUE_CHUNKS)
    left = threading.Event()

    def run():
        try:
            raw = QueueFile(chunks, left)
            with io.BufferedWriter(raw, CHUNK_BYTES) as file:
                write_to(file)
            chunks.put(DONE)
        except BrokenPipeError:
            pass  # the client left: stop writing
        except Exception as error:  # re-raised in the stream
            chunks.put(error)

    writer = threading.Thread(target=run, name="iter_writer", daemon=True)
    writer.start()
    try:
        while (chunk := chunks.get()) is not DONE:
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk
    finally:  # done, or the client left: end the thread
        left.set()
        while writer.is_alive():  # unblock its put()
            with contextlib.suppress(queue.Empty):
                chunks.get(timeout=0.05)


def write_report(file):
    """Two writer APIs: csv writes into zipfile's member."""
    with zipfile.ZipFile(file, "w", zipfile.ZIP_DEFLATED) as zf:
        member = zf.open("squares.csv", "w")
        with io.TextIOWrapper(member, "utf-8", newline="") as text:
            rows = csv.writer(text)
            rows.writerow(["n", "square"])
            rows.writerows((n, n * n) for n in range(ROWS))


@app.get("/report.zip")
def report():
    return Response(
        iter_writer(write_report),
        mimetype="application/zip",
        headers={"Content-Disposition": "attachment; filename=report.zip"},
    )


# [recipe-end]

from snippets.checks import whole_number  # noqa: E402


# [csv]
@app.get("/rows.csv")
def rows_csv():
    count = whole_number("rows", 1, 10_000_000, default=ROWS)

    def write_rows(file):
        with io.TextIOWrapper(file, "utf-8", newline="") as text:
            rows = csv.writer(text)
            rows.writerow(["n", "square"])
            rows.writerows((n, n * n) for n in range(count))

    return Response(iter_writer(write_rows), mimetype="text/csv")


# [csv-end]
