"""async/asgi_servers in process: NoticeDisconnect driven by hand, as an
ASGI server would drive it, under both bridges."""

import asyncio

import pytest

from snippets import asgi_servers as asgi_bridge
from snippets.asgi_servers import ENDED, NoticeDisconnect


def leave_after_first_tick(asgi_app, stream_id):
    """Run one request; the client disconnects once the first tick is sent."""

    async def run():
        requested, first_tick = False, asyncio.Event()
        sent = []

        async def receive():
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await first_tick.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)
            if message.get("body"):
                first_tick.set()

        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "path": "/ticks",
            "root_path": "",
            "scheme": "http",
            "query_string": f"seconds=30&interval_ms=200&id={stream_id}".encode(),
            "headers": [(b"host", b"localhost")],
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 1234),
        }
        await asyncio.wait_for(asgi_app(scope, receive, send), timeout=10)
        return sent

    return asyncio.run(run())


@pytest.mark.parametrize("name", ["asgi_app", "a2wsgi_app"])
def test_notice_disconnect_tells_the_generator(name):
    sent = leave_after_first_tick(getattr(asgi_bridge, name), f"inproc-{name}")
    assert ENDED[f"inproc-{name}"] == "client gone"
    bodies = [m.get("body") for m in sent if m["type"] == "http.response.body"]
    assert bodies[0] == b"tick 1\n"


def test_a_receive_past_the_body_waits_for_the_disconnect():
    """An app that reads past the request body gets http.disconnect when the
    client leaves, as from the server itself."""
    seen = []

    async def app_reading_twice(scope, receive, send):
        for _ in range(3):
            seen.append(await receive())

    async def run():
        messages = [
            {"type": "http.request", "body": b"a", "more_body": True},
            {"type": "http.request", "body": b"b", "more_body": False},
            {"type": "http.request", "body": b"", "more_body": False},  # ignored
            {"type": "http.disconnect"},
        ]

        async def receive():
            return messages.pop(0)

        await NoticeDisconnect(app_reading_twice)({"type": "http"}, receive, None)

    asyncio.run(run())
    assert [m["type"] for m in seen] == ["http.request"] * 2 + ["http.disconnect"]
    assert seen[1]["body"] == b"b"


def test_other_scopes_pass_through():
    """Lifespan messages go straight to the wrapped app (a2wsgi answers them)."""
    sent = []

    async def run():
        messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

        async def receive():
            return messages.pop(0)

        async def send(message):
            sent.append(message["type"])

        await asgi_bridge.a2wsgi_app({"type": "lifespan"}, receive, send)

    asyncio.run(run())
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


def test_notice_disconnect_refuses_a_body_over_its_limit():
    """NoticeDisconnect holds the body in memory until the app reads it: past
    MAX_BODY it answers 413 and stops reading; the app is never called."""
    called, sent, received = [], [], []
    chunk = b"x" * 16_384

    async def app(scope, receive, send):
        called.append(True)

    async def run():
        async def receive():
            received.append(len(chunk))  # a 1 MiB upload
            more = sum(received) < 1024 * 1024
            return {"type": "http.request", "body": chunk, "more_body": more}

        async def send(message):
            sent.append(message)

        await asyncio.wait_for(
            NoticeDisconnect(app)({"type": "http"}, receive, send), 5
        )

    asyncio.run(run())
    assert called == []
    assert sent[0]["status"] == 413
    assert sum(received) <= asgi_bridge.MAX_BODY + len(chunk)


def test_notice_disconnect_passes_a_body_at_its_limit():
    seen = []

    async def app(scope, receive, send):
        seen.append(await receive())

    async def run():
        messages = [
            {"type": "http.request", "body": b"x" * asgi_bridge.MAX_BODY},
        ]

        async def receive():
            return messages.pop(0)

        await NoticeDisconnect(app)({"type": "http"}, receive, None)

    asyncio.run(run())
    assert len(seen[0]["body"]) == asgi_bridge.MAX_BODY


def test_a2wsgi_runs_ten_threads_unless_you_pass_workers():
    """a2wsgi's WSGIMiddleware runs the app in its own thread pool: ten
    threads by default, ``workers=`` threads when given."""
    from a2wsgi import WSGIMiddleware

    assert asgi_bridge.a2wsgi_app.app.executor._max_workers == 10
    assert WSGIMiddleware(asgi_bridge.app, workers=3).executor._max_workers == 3
