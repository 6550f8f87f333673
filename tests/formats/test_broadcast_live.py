"""Broadcast across processes: the in-process broker does not cross a process
boundary; Redis pub/sub does. Real gunicorn processes, a real redis-server;
ordering by checkpoints (a "subscribed" event, PUBSUB NUMSUB), not sleeps."""

import contextlib
import time

import httpx
import pytest
import redis
from httpx_sse import EventSource

from snippets import broadcast
from snippets.broadcast import SUBSCRIBED, RedisBroker
from tests.servers import gunicorn, redis_server

pytestmark = pytest.mark.live

TARGET = "snippets.broadcast:app"
GTHREAD = {"worker_class": "gthread", "args": ("--threads", "4")}


@contextlib.contextmanager
def subscribe(url):
    """Open /stream and return once the server has subscribed."""
    with (
        httpx.Client(base_url=url, timeout=20) as http,
        http.stream("GET", "/stream?limit=5") as response,
    ):
        events = EventSource(response).iter_sse()
        assert next(events).event == "subscribed"
        yield events


def publish(url, message):
    reply = httpx.post(f"{url}/publish", json={"message": message}, timeout=20)
    reply.raise_for_status()
    return reply.json()["delivered_to"]


def next_message(events):
    event = next(events)
    assert event.event == "message"
    return event.json()


def test_local_broker_does_not_cross_processes():
    """Two server processes, each with its own LocalBroker: a message
    published to B never reaches a subscriber of A. A marker published to A
    afterwards arrives first, so B's message was not merely late."""
    with (
        gunicorn(TARGET, **GTHREAD) as (a, _),
        gunicorn(TARGET, **GTHREAD) as (b, _),
        subscribe(a) as events,
    ):
        assert publish(b, "sent to B") == 0
        assert publish(a, "marker sent to A") == 1
        assert next_message(events) == "marker sent to A"


@pytest.mark.redis
def test_redis_reaches_subscribers_in_two_processes(monkeypatch):
    with redis_server() as redis_url:
        monkeypatch.setenv("BROADCAST_REDIS_URL", redis_url)
        store = redis.Redis.from_url(redis_url)
        with (
            gunicorn(TARGET, **GTHREAD) as (a, proc_a),
            gunicorn(TARGET, **GTHREAD) as (b, proc_b),
            subscribe(a) as on_a,
            subscribe(b) as on_b,
        ):
            assert proc_a.pid != proc_b.pid
            # Checkpoint: Redis itself counts both subscriptions.
            assert store.pubsub_numsub(RedisBroker.channel) == [(b"broadcast", 2)]
            # A third request, to server A, publishes to both processes.
            assert publish(a, "hello, 👋 everyone") == 2
            assert next_message(on_a) == "hello, 👋 everyone"
            assert next_message(on_b) == "hello, 👋 everyone"
        # Both streams closed: their generators unsubscribed.
        deadline = time.monotonic() + 15
        while store.pubsub_numsub(RedisBroker.channel) != [(b"broadcast", 0)]:
            assert time.monotonic() < deadline, "subscriptions were not closed"
            time.sleep(0.05)


@pytest.mark.redis
def test_redis_broker_in_process(monkeypatch):
    """The RedisBroker itself: subscribed before the first publish, a None
    (heartbeat) while silent, messages JSON round-tripped."""
    monkeypatch.setattr(broadcast, "HEARTBEAT_SECONDS", 0.05)
    with redis_server() as redis_url:
        broker = RedisBroker(redis_url)
        assert broker.publish("before anyone listens") == 0
        with contextlib.closing(broker.listen()) as messages:
            assert next(messages) is SUBSCRIBED
            # Pub/sub keeps nothing: the earlier message is gone for good.
            assert next(messages) is None  # a heartbeat
            assert broker.publish({"n": 1}) == 1
            assert next(messages) == {"n": 1}
        assert broker.publish("nobody listens") == 0


@pytest.mark.redis
def test_redis_drops_slow_pubsub_clients_by_default():
    """Redis's own slow-consumer policy: a pub/sub client whose output buffer
    passes 32 MB, or stays above 8 MB for 60 s, is disconnected."""
    with redis_server() as redis_url:
        limits = redis.Redis.from_url(redis_url).config_get(
            "client-output-buffer-limit"
        )
    assert "pubsub 33554432 8388608 60" in limits["client-output-buffer-limit"]


@pytest.mark.redis
def test_redis_broker_serves_more_than_redis_pys_default_100_connections():
    """redis-py 8 caps a connection pool at 100 and every subscriber holds one:
    with the default pool the 101st subscription, and a publish after it,
    fail with "Too many connections"; the snippet's broker raises the cap,
    so subscriber 101 still subscribes."""
    with redis_server() as url:
        default = redis.Redis.from_url(url)
        assert default.connection_pool.max_connections == 100
        held = []
        try:  # what a broker without max_connections would meet
            for _ in range(100):
                held.append(default.pubsub())
                held[-1].subscribe("broadcast")
            held.append(default.pubsub())
            with pytest.raises(redis.ConnectionError, match="Too many connections"):
                held[-1].subscribe("broadcast")
            with pytest.raises(redis.ConnectionError, match="Too many connections"):
                default.publish("broadcast", "and a publish fails too")
        finally:
            for pubsub in held:
                pubsub.close()
        broker = RedisBroker(url, max_subscribers=150)
        listeners = [broker.listen() for _ in range(120)]
        try:
            assert all(next(listener) is SUBSCRIBED for listener in listeners)
        finally:
            for listener in listeners:
                listener.close()
