"""snippets/restarts.py in process: heartbeats while idle, what the
finally block logs, and the demo page."""

import pytest

from snippets import restarts as graceful_stream
from snippets.restarts import app


@pytest.fixture
def client():
    return app.test_client()


def test_an_idle_stream_heartbeats(client, monkeypatch):
    """With a tick far away, the stream writes a comment every
    HEARTBEAT_SECONDS instead of sleeping until the next event."""
    monkeypatch.setattr(graceful_stream, "TICK_MS", 3_600_000)
    monkeypatch.setattr(graceful_stream, "HEARTBEAT_SECONDS", 0.01)
    response = client.get("/events")
    body = iter(response.response)
    assert next(body) == b"retry: 250\n\n"
    assert [next(body), next(body)] == [b": keep-alive\n\n"] * 2
    response.close()


def test_finally_logs_how_the_stream_ended(client, caplog):
    response = client.get("/events")
    body = iter(response.response)
    next(body)
    with caplog.at_level("INFO", logger=app.logger.name):
        response.close()
    assert "stream GeneratorExit after event" in caplog.text


def test_demo_page_listens_for_ticks_and_bye(client):
    page = client.get("/").get_data(as_text=True)
    assert 'new EventSource("/events")' in page
    assert 'addEventListener("bye"' in page


def test_the_recipe_ticks_until_shutdown_then_says_bye(monkeypatch):
    """/clock sends a retry hint, an event per tick with its id, and on
    shutdown a bye event, then ends."""
    monkeypatch.setattr(graceful_stream, "TICK_SECONDS", 0.01)
    response = app.test_client().get("/clock", buffered=False)
    body = iter(response.response)
    try:
        assert next(body) == b"retry: 250\n\n"
        assert next(body) == b"id: 1\ndata: tick 1\n\n"
        graceful_stream.shutdown.set()
        assert list(body) == [b"event: bye\ndata: restarting\n\n"]
    finally:
        graceful_stream.shutdown.clear()
        response.close()
