"""snippets/sse.py in-process: heartbeats, encoder edge cases, input checks,
and what the httpx-sse client makes of a heartbeat."""

import logging

import httpx
import pytest
from httpx_sse import SSEError, connect_sse

from snippets import sse
from snippets.sse import app, encode


def parse(wire):
    headers = {"Content-Type": "text/event-stream"}
    reply = httpx.Response(200, headers=headers, text=wire)
    transport = httpx.MockTransport(lambda request: reply)
    with (
        httpx.Client(transport=transport) as http,
        connect_sse(http, "GET", "http://example.test/") as source,
    ):
        return [(e.event, e.data, e.id, e.retry) for e in source.iter_sse()]


def test_idle_stream_sends_heartbeat_comments(monkeypatch):
    monkeypatch.setattr(sse, "HEARTBEAT_SECONDS", 0.05)
    body = app.test_client().get("/events?limit=1&every=300").get_data(as_text=True)
    head, _, event = body.partition("event: tick")
    assert head.startswith("retry: 1000\n\n: keep-alive\n\n")
    assert head.count(": keep-alive\n\n") >= 2  # 300 ms of silence, 50 ms apart
    assert event == '\nid: 1\ndata: {"n": 1, "text": "tick 1"}\n\n'


def test_httpx_sse_reports_heartbeat_as_empty_event():
    """httpx-sse 0.4.3 (issue #35): a comment after an event with an id is
    dispatched as an empty event; a browser dispatches nothing. If this test
    fails, httpx-sse fixed it: update the note on docs/formats/sse.rst."""
    events = parse(encode("x", id=1) + ": keep-alive\n\n")
    assert events == [("message", "x", "1", None), ("message", "", "1", None)]
    assert parse("retry: 1000\n\n") == [("message", "", "", 1000)]


@pytest.mark.parametrize(
    "fields", [{"event": "a\rb"}, {"event": "a\nb"}, {"id": "1\r\n"}, {"id": "a\0"}]
)
def test_encoder_refuses_fields_that_would_break_the_frame(fields):
    with pytest.raises(ValueError, match="must be one line without NUL"):
        encode("x", **fields)


def test_encoder_writes_retry_and_keeps_unicode():
    assert encode("é 👩‍💻", retry=500) == "retry: 500\ndata: é 👩‍💻\n\n"
    assert parse(sse.encode_json({"t": "a\u2028b"})) == [
        ("message", '{"t": "a\u2028b"}', "", None)
    ]


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=1001", "limit=-1", "limit=1e3", "every=60001", "every=x"],
)
def test_bad_query_is_a_400_with_a_message(query):
    response = app.test_client().get(f"/events?{query}")
    assert response.status_code == 400
    name = query.split("=")[0]
    assert f"{name} must be a whole number from" in response.get_data(as_text=True)


@pytest.mark.parametrize("last_id", ["-1", "1.5", "abc", "١٢", "9" * 10, " 1"])
def test_bad_last_event_id_is_a_400(last_id):
    response = app.test_client().get("/events", headers={"Last-Event-ID": last_id})
    assert response.status_code == 400
    assert b"Last-Event-ID must be the id" in response.data


def test_leaving_the_client_closes_the_generator(caplog):
    caplog.set_level(logging.INFO, logger=app.logger.name)
    http = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t")
    with connect_sse(http, "GET", "/events?every=0") as source:
        for event in source.iter_sse():
            if event.id == "2":
                break
    assert "stream closed after event 2" in caplog.messages


def test_httpx_sse_refuses_a_stream_without_the_event_stream_type():
    """httpx-sse 0.4.3 checks the media type before it parses anything."""
    reply = httpx.Response(
        200, headers={"Content-Type": "text/plain"}, text="data: x\n\n"
    )
    transport = httpx.MockTransport(lambda request: reply)
    with (
        httpx.Client(transport=transport) as http,
        connect_sse(http, "GET", "http://example.test/") as source,
        pytest.raises(SSEError, match="text/event-stream"),
    ):
        list(source.iter_sse())


@pytest.mark.parametrize("path", ["/stream", "/events?limit=1&every=0"])
def test_every_sse_route_says_text_event_stream(path):
    """EventSource refuses a stream of any other type, and fires an error."""
    response = app.test_client().get(path)
    try:
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert {k: response.headers[k] for k in sse.STREAM_HEADERS} == {
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
        assert next(iter(response.response)) == b"retry: 1000\n\n"
    finally:
        response.close()


def test_the_recipe_stream_is_endless_and_one_event_a_second(monkeypatch):
    """/stream reads nothing from the query string: its pace is EVERY_SECONDS
    and it has no limit."""
    monkeypatch.setattr(sse, "EVERY_SECONDS", 0.0)
    monkeypatch.setattr(sse.ticks, "__defaults__", (0.0, None))
    response = app.test_client().get("/stream?limit=1&every=5000")
    body = iter(response.response)
    try:
        ids = [next(body).split(b"\n")[1] for _ in range(4)][1:]
        assert ids == [b"id: 1", b"id: 2", b"id: 3"]
    finally:
        response.close()
