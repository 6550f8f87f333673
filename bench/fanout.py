"""Broadcast fan-out through Redis: publish to receipt, over two app instances.

A throwaway redis-server, two gunicorn gevent processes serving
``snippets.broadcast`` with its Redis broker, and ``subscribers`` SSE streams
split between them, opened from this process with raw sockets and one
:mod:`selectors` loop. Each message is published with ``POST /publish`` on the
first instance; its latency for one subscriber is the time from just before
the POST to the moment this process reads the event on that stream. Both ends
are this process, so one monotonic clock times both.
"""

import contextlib
import http.client
import json
import selectors
import socket
import statistics
import time

from bench.network import raise_fd_limit
from tests.servers import gunicorn, redis_server

TARGET = "snippets.broadcast:app"


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def publish(url, text):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", "/publish", json.dumps({"message": text}),
                     {"Content-Type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        body = json.loads(response.read())
    finally:
        conn.close()
    return body["delivered_to"]


class Subscribers:
    """SSE streams read by one selectors loop; ``seen[text]`` = receipt times."""

    def __init__(self):
        self.selector = selectors.DefaultSelector()
        self.tails = {}
        self.subscribed = set()
        self.seen = {}

    def open(self, url, count):
        host, port = url.removeprefix("http://").split(":")
        request = (f"GET /stream?limit=1000 HTTP/1.1\r\nHost: {host}:{port}\r\n"
                   "\r\n").encode()  # fmt: skip
        for _ in range(count):
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(request)
            sock.setblocking(False)
            self.tails[sock] = b""
            self.selector.register(sock, selectors.EVENT_READ)

    def poll(self, timeout=0.05):
        for key, _ in self.selector.select(timeout):
            sock = key.fileobj
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            now = time.monotonic()
            if not data:
                self.selector.unregister(sock)
                continue
            events = (self.tails[sock] + data).split(b"\n\n")
            self.tails[sock] = events.pop()
            for raw in events:
                if b"event: subscribed" in raw:
                    self.subscribed.add(sock)
                elif b"event: message" in raw:
                    text = json.loads(raw.split(b"data: ", 1)[1])
                    self.seen.setdefault(text, []).append(now)

    def wait(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            self.poll()
        return predicate()

    def close(self):
        for sock in self.tails:
            sock.close()
        self.selector.close()


def fanout(subscribers, messages, instances=2):
    raise_fd_limit(subscribers + 500)
    per_instance = [subscribers // instances + (i < subscribers % instances)
                    for i in range(instances)]  # fmt: skip
    args = ("--worker-connections", str(2 * subscribers + 100), "--timeout", "120")
    clients = Subscribers()
    latencies, delivered, received, subscribe_seconds = [], [], [], None
    with redis_server() as redis_url, contextlib.ExitStack() as stack:
        # redis-py 8 caps a pool at 100 connections by default, and each
        # subscriber holds one (its pub/sub connection): raise the cap.
        pool = f"{redis_url}?max_connections={subscribers + 100}"
        env = ("--env", f"BROADCAST_REDIS_URL={pool}")
        urls = [stack.enter_context(gunicorn(TARGET, worker_class="gevent",
                                             args=(*env, *args)))[0]
                for _ in range(instances)]  # fmt: skip
        try:
            start = time.monotonic()
            for url, count in zip(urls, per_instance, strict=True):
                clients.open(url, count)
            clients.wait(lambda: len(clients.subscribed) == subscribers, 120)
            subscribe_seconds = time.monotonic() - start
            for i in range(messages):
                text = f"m{i}"
                sent = time.monotonic()
                delivered.append(publish(urls[0], text))
                clients.wait(lambda t=text: len(clients.seen.get(t, ())) >= subscribers,
                             30)  # fmt: skip
                got = clients.seen.get(text, [])
                received.append(len(got))
                latencies.extend(t - sent for t in got)
        finally:
            clients.close()
    return {
        "subscribers": subscribers,
        "instances": instances,
        "per_instance": per_instance,
        "messages": messages,
        "subscribed": len(clients.subscribed),
        "subscribe_seconds": subscribe_seconds,
        "delivered_to": delivered,  # what Redis PUBLISH answered, per message
        "received": received,  # streams that got each message
        "p50": percentile(latencies, 0.50) if latencies else None,
        "p99": percentile(latencies, 0.99) if latencies else None,
        "max": max(latencies) if latencies else None,
        "mean": statistics.fmean(latencies) if latencies else None,
    }
