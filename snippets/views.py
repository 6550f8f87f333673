"""Async views: what they can return, and how to stream from an async source."""

# [recipe]
import asyncio
import logging

from flask import Flask, Response

app = Flask(__name__)
app.logger.setLevel(logging.INFO)  # the source logs when it stops

TICK_DELAY = 0.01  # seconds between ticks: the source "waits for I/O"


async def ticks(count):
    """The async source: an async generator, like a database
    cursor or an HTTP client's stream. Its ``finally`` is where
    it would release them."""
    made = 0
    try:
        for number in range(count):
            await asyncio.sleep(TICK_DELAY)
            made += 1
            yield f"tick {number}\n"
    finally:
        app.logger.info("ticks stopped after %d", made)


def drive(source):
    """A sync generator that drives an async one, step by
    step, on an event loop of its own."""
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(anext(source))
            except StopAsyncIteration:
                return
    finally:  # also on GeneratorExit, when the client has gone
        loop.run_until_complete(source.aclose())
        loop.close()


@app.get("/")
async def index():
    body = drive(ticks(10))
    return Response(body, mimetype="text/plain")


# [recipe-end]

import threading  # noqa: E402  (the variants below)

from flask import request, stream_with_context  # noqa: E402

from snippets.checks import whole_number  # noqa: E402


def read_count():
    return whole_number("count", 0, 10_000, default=3)


# [returns]
PLAIN = {"Content-Type": "text/plain; charset=utf-8"}  # not HTML: no XSS


@app.get("/hello")
async def hello():
    await asyncio.sleep(0)  # an async view may await, then return as usual
    return {"hello": "world"}


@app.get("/sync-generator")
async def sync_generator():
    count = read_count()

    def generate():  # runs after the view's event loop is gone: no await here
        for number in range(count):
            yield f"line {number}\n"

    return generate(), PLAIN


# Fails on purpose: a view cannot return an async generator (a 500).
@app.get("/async-generator")
async def async_generator():
    return ticks(read_count())  # not a valid return value: a 500


# Fails on purpose: no WSGI server can iterate an async generator.
@app.get("/async-generator-response")
async def async_generator_response():
    return Response(ticks(read_count()))  # the server cannot iterate it


@app.get("/with-context")
async def with_context():
    @stream_with_context
    def generate():
        yield f"hello {request.args.get('name', 'stranger')}\n"

    return generate(), PLAIN  # it echoes the request


# [returns-end]


# [own-loop]
@app.get("/ticks")
async def ticks_view():
    return Response(drive(ticks(read_count())), mimetype="text/plain")


# [own-loop-end]


# [bridge]
class AsyncIterator:
    """An iterator over an async generator, run on one background event loop
    that the whole process shares. The server calls ``close()``. A source
    silent for ``timeout`` seconds is cancelled: a hung source does not hold
    the server's thread for ever."""

    timeout = 60  # seconds one step may take
    loop = None
    lock = threading.Lock()

    def __init__(self, source):
        with self.lock:  # started on first use: after a server forks workers
            if AsyncIterator.loop is None:
                AsyncIterator.loop = asyncio.new_event_loop()
                threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.source = source

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return self.run(anext(self.source))
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self):
        self.run(self.source.aclose())

    def run(self, awaitable):
        future = asyncio.run_coroutine_threadsafe(awaitable, self.loop)
        try:
            return future.result(timeout=self.timeout)
        except TimeoutError:
            future.cancel()  # CancelledError at the source's await
            raise


@app.get("/ticks-shared-loop")
async def ticks_shared_loop():
    return Response(AsyncIterator(ticks(read_count())), mimetype="text/plain")


# [bridge-end]
