"""snippets/broadcast.py in-process: the slow-subscriber policy, heartbeats,
unsubscribing on close, and input checks."""

import io

import pytest

from snippets import broadcast
from snippets.broadcast import OVERFLOW, SUBSCRIBED, LocalBroker, app


@pytest.fixture
def small_broker(monkeypatch):
    broker = LocalBroker(maxsize=2)
    monkeypatch.setattr(broadcast, "broker", broker)
    return broker


def test_slow_subscriber_gets_overflow_and_is_dropped(small_broker):
    client = app.test_client()
    response = client.get("/stream")
    body = iter(response.response)
    assert next(body) == b"event: subscribed\ndata: {}\n\n"
    for n in range(3):  # the subscriber reads nothing meanwhile
        client.post("/publish", json={"message": f"m{n}"})
    assert small_broker.queues == set()  # dropped at the third message
    assert list(body) == [
        b'event: message\ndata: "m0"\n\n',
        b'event: message\ndata: "m1"\n\n',
        b'event: overflow\ndata: {"error": "you fell behind; reconnect"}\n\n',
    ]


def test_publisher_never_waits_for_a_reader_that_never_reads():
    broker = LocalBroker(maxsize=10)
    stuck = broker.listen()
    assert next(stuck) is SUBSCRIBED
    delivered = [broker.publish(n) for n in range(10_000)]
    assert delivered[:10] == [1] * 10 and set(delivered[10:]) == {0}
    assert list(stuck) == [*range(10), OVERFLOW]


def test_fast_subscriber_keeps_everything_while_slow_one_is_dropped():
    broker = LocalBroker(maxsize=2)
    fast, slow = broker.listen(), broker.listen()
    next(fast), next(slow)
    received = []
    for n in range(5):
        broker.publish(n)
        received.append(next(fast))
    assert received == [0, 1, 2, 3, 4]
    assert list(slow) == [0, 1, OVERFLOW]


def test_idle_stream_sends_heartbeats_and_closing_unsubscribes(
    small_broker, monkeypatch
):
    monkeypatch.setattr(broadcast, "HEARTBEAT_SECONDS", 0.01)
    response = app.test_client().get("/stream")
    body = iter(response.response)
    next(body)  # subscribed
    assert next(body) == b": keep-alive\n\n"
    assert len(small_broker.queues) == 1
    response.close()
    assert small_broker.queues == set()


def test_limit_ends_the_stream_after_that_many_messages(small_broker):
    client = app.test_client()
    body = iter(client.get("/stream?limit=1").response)
    next(body)
    client.post("/publish", json={"message": "only"})
    assert list(body) == [b'event: message\ndata: "only"\n\n']
    assert small_broker.queues == set()


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "²", "x", ""])
def test_bad_limit_is_a_400(limit):
    response = app.test_client().get(f"/stream?limit={limit}")
    assert response.status_code == 400
    assert b"limit must be a whole number from 1 to 1,000" in response.data


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 400), ({"message": ""}, 400), ({"message": 3}, 400), ([], 400),
     ({"message": "x" * 1001}, 413)],
)  # fmt: skip
def test_bad_message_is_a_4xx(body, status):
    response = app.test_client().post("/publish", json=body)
    assert response.status_code == status


@pytest.mark.parametrize("data", ["[" * 5000, '{"message": ' + "{" * 5000])
def test_too_deep_json_is_a_400_not_a_500(data):
    """RecursionError is not a ValueError: get_json(silent=True) alone lets
    it through as a 500."""
    response = app.test_client().post(
        "/publish", data=data, content_type="application/json"
    )
    assert response.status_code == 400
    assert b"send JSON like {&#34;message&#34;: &#34;...&#34;}" in response.data


def test_body_over_the_limit_is_413_before_it_is_read():
    """MAX_CONTENT_LENGTH (16 KiB): a declared length over it is refused
    before a byte of the body is read (tests/live/test_broadcast_redis.py
    measures the memory of a 200 MiB body over a socket)."""

    class Unread(io.BytesIO):
        def read(self, *args):
            raise AssertionError("the body was read")

        readline = read

    response = app.test_client().post(
        "/publish",
        input_stream=Unread(),
        content_type="application/json",
        environ_overrides={"CONTENT_LENGTH": str(200 * 1024 * 1024)},
    )
    assert response.status_code == 413


@pytest.mark.parametrize("path", ["/events", "/stream?limit=1"])
def test_both_streams_are_text_event_stream_and_unbuffered(small_broker, path):
    """EventSource refuses a stream of any other type."""
    response = app.test_client().get(path)
    try:
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert response.headers["X-Accel-Buffering"] == "no"
        assert response.headers["Cache-Control"] == "no-cache"
        assert next(iter(response.response)) == b"event: subscribed\ndata: {}\n\n"
    finally:
        response.close()
    assert small_broker.queues == set()  # closing unsubscribed
