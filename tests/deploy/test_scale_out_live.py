"""snippets/scale_out.py against a real redis-server, in process: ids are
stream ids, a new client starts at the newest event (not "$"), a resumed
client gets exactly what it missed, a trimmed-away id gets a reset, and
pub/sub keeps nothing for a client that was away."""

import contextlib
import json
import threading

import pytest
import redis

from snippets import scale_out as event_log
from tests.servers import redis_server, wait_until

pytestmark = [pytest.mark.live, pytest.mark.redis]


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture
def store(redis_url, monkeypatch):
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    store.flushall()
    monkeypatch.setattr(event_log, "store", store)
    yield store
    store.close()


@pytest.fixture
def client():
    return event_log.app.test_client()


@contextlib.contextmanager
def stream(client, path="/events", **headers):
    response = client.get(path, headers=headers)
    try:
        body = iter(response.response)
        assert next(body) == f"retry: {event_log.RETRY_MS}\n\n".encode()
        yield body
    finally:
        response.close()


def read(body):
    """One event as (event type, id, message)."""
    lines = next(body).decode().removesuffix("\n\n").split("\n")
    fields = dict(line.split(": ", 1) for line in lines)
    return fields.get("event", "message"), fields["id"], json.loads(fields["data"])


def test_publish_returns_the_stream_id_that_becomes_the_sse_id(store, client):
    first = client.post("/publish", json={"message": "one"}).json["id"]
    second = client.post("/publish", json={"message": "two"}).json["id"]
    with stream(client, **{"Last-Event-ID": first}) as body:
        assert read(body) == ("message", second, "two")


def test_new_client_gets_events_published_after_it_connected(store, client):
    """A new client starts after the newest event, resolved when it connects:
    an event added before its first XREAD is not skipped (with "$" it would
    be, on every later XREAD too)."""
    event_log.append("before")
    response = client.get("/events")  # the view has resolved "newest" now
    event_log.append("after connecting, before the first XREAD")
    try:
        body = iter(response.response)
        next(body)  # retry
        assert read(body)[2] == "after connecting, before the first XREAD"
    finally:
        response.close()


def test_resume_sends_exactly_what_was_missed(store, client):
    ids = [event_log.append_and_publish(str(n)) for n in range(1, 6)]
    with stream(client, **{"Last-Event-ID": ids[1]}) as body:
        assert [read(body)[1:] for _ in range(3)] == list(
            zip(ids[2:], "345", strict=True)
        )


def test_an_id_trimmed_away_gets_a_reset(store, client, monkeypatch):
    """MAXLEN bounds the log. A client whose last id was trimmed would miss
    events: it gets a "reset" event, then the stream goes on from now."""
    monkeypatch.setattr(event_log, "MAXLEN", 3)
    # Exact trimming for the test; the snippet's "about MAXLEN" trims in
    # whole nodes of 100 entries.
    monkeypatch.setattr(
        store,
        "xadd",
        lambda *a, maxlen, **k: redis.Redis.xadd(
            store, *a, maxlen=maxlen, approximate=False, **k
        ),
    )
    ids = [event_log.append_and_publish(str(n)) for n in range(1, 8)]
    assert store.xlen(event_log.STREAM) == 3
    with stream(client, **{"Last-Event-ID": ids[0]}) as body:
        event, reset_id, _ = read(body)
        assert (event, reset_id) == ("reset", ids[-1])
        later = event_log.append("later")
        assert read(body) == ("message", later, "later")


def test_the_default_maxlen_trims_to_about_maxlen(store):
    """redis-py's xadd trims approximately (MAXLEN ~): the log stays near
    MAXLEN, never below it."""
    pipe = store.pipeline()
    for n in range(event_log.MAXLEN + 500):
        pipe.xadd(event_log.STREAM, {"message": str(n)}, maxlen=event_log.MAXLEN)
    pipe.execute()
    assert event_log.MAXLEN <= store.xlen(event_log.STREAM) < event_log.MAXLEN + 200


def test_an_empty_log_starts_at_zero(store, client):
    with stream(client) as body:
        event_id = event_log.append("first ever")
        assert read(body) == ("message", event_id, "first ever")


def test_an_unknown_id_on_an_empty_log_resets_at_zero(store, client):
    with stream(client, **{"Last-Event-ID": "5-0"}) as body:
        assert read(body)[:2] == ("reset", "0-0")


def test_idle_stream_heartbeats(store, client, monkeypatch):
    monkeypatch.setattr(event_log, "BLOCK_MS", 50)
    for path in ("/events", "/live"):
        with stream(client, path) as body:
            assert [next(body), next(body)] == [b": keep-alive\n\n"] * 2


def test_pubsub_keeps_nothing_for_a_client_that_was_away(store, client):
    """/live sends what is published while it listens, with the same ids;
    what was published before it subscribed is gone (the log still has it)."""
    gone = event_log.append_and_publish("while nobody listened")
    with stream(client, "/live", **{"Last-Event-ID": gone}) as body:
        # Checkpoint: Redis counts the subscription before we publish.
        assert store.pubsub_numsub(event_log.CHANNEL) == [(event_log.CHANNEL, 1)]
        fresh = event_log.append_and_publish("now")
        assert read(body) == ("message", fresh, "now")
    assert store.xrange(event_log.STREAM, gone, gone)[0][1] == {
        "message": "while nobody listened"
    }


def test_demo_page(client):
    page = client.get("/").get_data(as_text=True)
    assert "new EventSource(url)" in page and '"/live"' in page


def test_each_waiting_stream_holds_one_blocked_redis_connection(store, client):
    """XREAD BLOCK occupies its connection: Redis counts one blocked client
    per open /events stream."""
    with stream(client) as first, stream(client) as second:
        responses = [first, second]
        # Each stream's first XREAD starts when its body is asked for more.
        threads = [threading.Thread(target=next, args=(b,)) for b in responses]
        for thread in threads:
            thread.start()
        assert wait_until(lambda: store.info("clients")["blocked_clients"] == 2)
        event_log.append("wake up")
        for thread in threads:
            thread.join(timeout=10)


def test_dollar_skips_an_event_added_between_two_xreads(store):
    """The pitfall the snippet avoids: "$" means "after the newest entry at
    the time of THIS call", so looping on "$" loses what came in between."""
    assert store.xread({"log": "$"}, block=10) == []
    store.xadd("log", {"message": "between two calls"})
    assert store.xread({"log": "$"}, block=10) == []
    assert store.xlen("log") == 1
