"""Two gunicorn instances behind one nginx, a real redis-server, Chromium.
The instance serving the browser is killed (SIGKILL) in the middle of the
stream: the log stream resumes on the other instance with nothing lost and
nothing twice; the pub/sub stream, in the same page, loses what was
published while it reconnected."""

import threading
import time

import pytest
import redis

from snippets import scale_out as event_log
from tests.servers import gunicorn, kill_tree, nginx_http, redis_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.live,
    pytest.mark.redis,
    pytest.mark.nginx,
]

TARGET = "snippets.scale_out:app"
EVERY = 0.02  # seconds between published events


def proxy(a, b):
    """nginx's upstream: ip_hash keeps one browser (here: both of its
    streams) on one instance while that instance is up."""
    upstream = f"""upstream app {{
        ip_hash;
        server {a.removeprefix("http://")};
        server {b.removeprefix("http://")};
    }}"""
    location = """location / {
        proxy_pass http://app;
        proxy_buffering off;
        add_header X-Upstream $upstream_addr always;
    }"""
    return upstream, location


def pump_until(page, predicate, timeout=30.0):
    """Playwright delivers events (page.on) only while it runs a call: wait
    inside it, not in time.sleep."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(50)
    return True


def lost_and_duplicated(received, published):
    unique = set(received)
    return len(set(published) - unique), len(received) - len(unique)


def test_lost_and_duplicated_counts():
    assert lost_and_duplicated(["1", "3", "3"], ["1", "2", "3"]) == (1, 1)


def test_failover_resumes_from_the_log_and_pubsub_loses(page, monkeypatch):
    with redis_server() as redis_url:
        monkeypatch.setenv("EVENT_LOG_REDIS_URL", redis_url)
        monkeypatch.setattr(
            event_log, "store", redis.Redis.from_url(redis_url, decode_responses=True)
        )
        threads = ("--threads", "8")
        with (
            gunicorn(TARGET, worker_class="gthread", args=threads) as (a, proc_a),
            gunicorn(TARGET, worker_class="gthread", args=threads) as (b, proc_b),
            nginx_http(*proxy(a, b)) as url,
        ):
            served = []  # (path, instance) of every stream response
            page.on(
                "response",
                lambda r: served.append(
                    (r.url.rsplit("/", 1)[1], r.headers.get("x-upstream"))
                ),
            )
            page.goto(f"{url}/")
            # Checkpoint: both streams answered (each subscribes before it
            # answers), and on the same instance.
            streams = {"events", "live"}
            assert pump_until(page, lambda: {p for p, _ in served} >= streams)
            first = {instance for path, instance in served if path != ""}
            assert len(first) == 1
            victim = {a: proc_a, b: proc_b}[f"http://{first.pop()}"]

            published, stop = [], threading.Event()

            def publisher():
                n = 0
                while not stop.wait(EVERY):
                    n += 1
                    event_log.append_and_publish(str(n))
                    published.append(str(n))

            thread = threading.Thread(target=publisher)
            thread.start()
            try:
                page.wait_for_function("window.received.log.length >= 20")
                kill_tree(victim)
                killed_at = len(published)
                # Checkpoints: both streams answered again (from the other
                # instance), and twenty more events came through the log.
                assert pump_until(page, lambda: len(served) >= 5)
                page.wait_for_function(
                    f"window.received.log.length >= {killed_at} + 20",
                    timeout=30_000,
                )
            finally:
                stop.set()
                thread.join()
            last = published[-1]
            page.wait_for_function(
                f"window.received.log.at(-1) === '{last}'"
                f" && window.received.live.at(-1) === '{last}'",
                timeout=30_000,
            )
            log = page.evaluate("window.received.log")
            live = page.evaluate("window.received.live")
            resets = page.evaluate("window.resets")
    # $upstream_addr lists every instance nginx tried: "dead, alive".
    instances = [addr.split(", ")[-1] for path, addr in served if path in streams]
    log_lost, log_dup = lost_and_duplicated(log, published)
    live_lost, live_dup = lost_and_duplicated(live, published)
    print(
        f"\n{len(published)} published; instances {instances};"
        f" log: lost {log_lost}, duplicated {log_dup};"
        f" pub/sub: lost {live_lost}, duplicated {live_dup}"
    )
    assert set(instances) == {a.removeprefix("http://"), b.removeprefix("http://")}
    assert (log_lost, log_dup, resets) == (0, 0, 0)
    assert live_lost > 0
    assert live_dup == 0
