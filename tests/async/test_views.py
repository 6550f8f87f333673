"""snippets/views.py in-process: what an async view can return, the
two idioms closing their async source, stream_with_context on both sides of
Flask 3.1.2, and the per-item async_to_sync trap."""

import asyncio
import contextlib
import logging
import signal
import threading

import pytest
from asgiref.sync import async_to_sync
from flask import Flask

from snippets.views import AsyncIterator, app, drive
from tests.flask_versions import run_with_flask

client = app.test_client()


def test_async_view_returns_what_a_sync_view_can():
    assert client.get("/hello").json == {"hello": "world"}
    response = client.get("/sync-generator?count=2")
    assert response.is_streamed
    assert response.data == b"line 0\nline 1\n"


def test_returning_an_async_generator_is_a_500_with_a_type_error(caplog):
    response = client.get("/async-generator")
    assert response.status_code == 500
    message = str(caplog.records[-1].exc_info[1])
    assert message.endswith("but it was a async_generator.")


def test_an_async_generator_view_function_is_a_500_too(caplog):
    """``async def view(): yield ...`` is not a coroutine function: Flask calls
    it as a sync view, and gets the same async generator back: the same
    TypeError as the page quotes."""
    other = Flask(__name__)

    @other.get("/")
    async def view():
        yield "x"

    assert other.test_client().get("/").status_code == 500
    error = caplog.records[-1].exc_info[1]
    assert isinstance(error, TypeError)
    assert str(error) == (
        "The view function did not return a valid response. The return type"
        " must be a string, dict, list, tuple with headers or status, Response"
        " instance, or WSGI callable, but it was a async_generator."
    )


@pytest.mark.parametrize("path", ["/with-context", "/sync-generator"])
def test_streams_that_echo_the_request_are_plain_text(path):
    """A bare generator gets Flask's default text/html; these views name
    text/plain, so a script in the query string is text, never run."""
    script = "<script>alert(document.domain)</script>"
    response = client.get(path, query_string={"name": script})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"


def test_a_hung_source_is_cancelled_after_the_timeout(monkeypatch):
    """AsyncIterator waits ``timeout`` seconds for a step, then cancels the
    source (its ``finally`` runs) and raises: the thread is free again."""
    monkeypatch.setattr(AsyncIterator, "timeout", 0.2)
    stopped = threading.Event()
    never = []

    async def hung():
        try:
            never.append(asyncio.Event())
            await never[0].wait()  # I/O that never answers
            yield "never"
        finally:
            stopped.set()

    iterator, result = AsyncIterator(hung()), []

    def step():
        with contextlib.suppress(TimeoutError):
            result.append(next(iterator))

    thread = threading.Thread(target=step, daemon=True)
    thread.start()
    thread.join(timeout=10)
    alive = thread.is_alive()
    if alive:  # let the source go, so no thread outlives the test
        AsyncIterator.loop.call_soon_threadsafe(never[0].set)
        thread.join(timeout=10)
    assert not alive
    assert stopped.wait(timeout=10)
    assert result == []
    iterator.close()  # what the server does next: harmless


def test_an_async_generator_in_a_response_fails_when_iterated():
    with pytest.raises(TypeError, match="'async_generator' object is not iterable"):
        client.get("/async-generator-response")


def test_a_sync_generator_has_no_event_loop_to_await_on():
    other = Flask(__name__)

    @other.get("/")
    async def view():
        asyncio.get_running_loop()  # the view itself runs on a loop

        def generate():
            try:
                asyncio.get_running_loop()
            except RuntimeError as exc:
                yield str(exc)

        return generate()

    assert other.test_client().get("/").data == b"no running event loop"


def test_stream_with_context_in_an_async_view_on_the_locked_flask():
    assert client.get("/with-context?name=Ada").data == b"hello Ada\n"


@pytest.mark.parametrize("path", ["/ticks", "/ticks-shared-loop"])
def test_both_idioms_stream_every_tick(path):
    response = client.get(f"{path}?count=3")
    assert response.data == b"tick 0\ntick 1\ntick 2\n"


@pytest.mark.parametrize("path", ["/ticks", "/ticks-shared-loop"])
def test_closing_the_response_runs_the_async_sources_finally(caplog, path):
    caplog.set_level(logging.INFO, logger=app.logger.name)
    response = client.get(f"{path}?count=1000")
    body = iter(response.response)
    assert [next(body), next(body)] == [b"tick 0\n", b"tick 1\n"]
    assert "ticks stopped" not in caplog.text
    response.close()
    assert "ticks stopped after 2" in caplog.text


def test_closing_an_unstarted_stream_is_harmless():
    async def source():
        yield "never"

    drive(source()).close()
    AsyncIterator(source()).close()


@pytest.mark.parametrize("count", ["x", "-1", "10001", "9" * 5000])
def test_bad_count_is_a_400(count):
    response = client.get(f"/ticks?count={count}")
    assert response.status_code == 400


def test_drive_uses_one_loop_per_stream():
    loops = []

    async def source():
        for _ in range(3):
            loops.append(asyncio.get_running_loop())
            yield ""

    list(drive(source()))
    assert len(set(map(id, loops))) == 1


def test_async_to_sync_per_item_stops_after_the_first_item():
    """Each async_to_sync call runs a new event loop, and a loop that ends
    closes the async generators first iterated on it: the stream ends after
    one item, quietly."""
    closed = []

    async def source():
        try:
            for number in range(3):
                yield number
        finally:
            closed.append(True)

    async def next_item(iterator):
        return await anext(iterator)

    iterator, items = source(), []
    with pytest.raises(StopAsyncIteration):
        while True:
            items.append(async_to_sync(next_item)(iterator))
    assert (items, closed) == ([0], [True])


VERSION_SCRIPT = """
from importlib.metadata import version
from flask import Flask, request, stream_with_context

app = Flask(__name__)

@app.get("/")
async def view():
    @stream_with_context
    def generate():
        yield f"hello {request.args['name']}"
    return generate()

try:
    with app.test_client().get("/?name=Ada") as response:
        result = (response.status_code, response.get_data(as_text=True))
except Exception as exc:
    result = (type(exc).__name__, str(exc).split(" at 0x")[0])
print(repr((version("flask"), result)))
"""


@pytest.mark.parametrize(
    ("release", "result"),
    [
        (
            "3.1.1",
            (
                "ValueError",
                "<Token var=<ContextVar name='flask.request_ctx'",
            ),
        ),
        ("3.1.2", (200, "hello Ada")),
    ],
)
def test_stream_with_context_in_an_async_view_was_fixed_in_3_1_2(
    tmp_path, release, result
):
    """3.1.1 raised "ValueError: <Token ...> was created in a different
    Context" as the view returned (pallets/flask#5774, fixed by #5799)."""
    assert run_with_flask(release, tmp_path, VERSION_SCRIPT) == (release, result)


def test_asyncio_run_replaces_only_pythons_default_sigint_handler():
    """In the main thread, asyncio.run installs its own SIGINT handler while
    it runs only when Python's default handler is the one installed, and puts
    Python's default back when it ends; any other handler is left alone."""
    assert threading.current_thread() is threading.main_thread()

    async def handler_now():
        return signal.getsignal(signal.SIGINT)

    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        during = asyncio.run(handler_now())
        assert during is not signal.default_int_handler
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

        def own(signum, frame):  # a server's own handler
            return None

        signal.signal(signal.SIGINT, own)
        assert asyncio.run(handler_now()) is own
        assert signal.getsignal(signal.SIGINT) is own
    finally:
        signal.signal(signal.SIGINT, previous)
