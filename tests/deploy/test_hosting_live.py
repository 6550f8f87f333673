"""Platform timeouts reproduced with nginx on 127.0.0.1, scaled down to
1 s: a first byte that comes too late, a stream that goes silent, and a
client that stops taking what is sent (send_timeout); and
snippets/hosting.py's answers to them."""

import json
import re
import socket
import struct
import time
import urllib.error
import urllib.request
from fcntl import ioctl
from termios import FIONREAD
from urllib.parse import urlsplit

import pytest

from snippets.hosting import app
from tests.servers import (
    dechunk,
    gunicorn,
    nginx,
    nginx_http,
    open_request,
    read_until,
    wait_until,
)

pytestmark = [pytest.mark.live, pytest.mark.nginx]

LIMIT = 1  # seconds: nginx's proxy_read_timeout


def proxy(upstream):
    return f"""location / {{
        proxy_pass {upstream};
        proxy_buffering off;
        proxy_read_timeout {LIMIT}s;
    }}"""


@pytest.fixture
def behind_nginx(live_server):
    with nginx(proxy(live_server(app))) as url:
        yield url


def get(url, path, timeout=20):
    """Status line and raw body, and the seconds until the body ended."""
    started = time.monotonic()
    with open_request(
        url, path, headers=("Connection: close",), timeout=timeout
    ) as sock:
        raw = read_to_close_or_end(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), body, time.monotonic() - started


def read_to_close_or_end(sock):
    data = b""
    while not data.endswith(b"\r\n0\r\n\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_late_first_byte_is_a_504(behind_nginx, live_server):
    """The work takes 2 s, the proxy waits 1 s for the response to start:
    the client gets nginx's 504 within 1 to 2 s of asking, never the answer."""
    status, _, seconds = get(behind_nginx, "/answer?seconds=2")
    assert status == "HTTP/1.1 504 Gateway Time-out"
    assert LIMIT <= seconds < 2


def test_a_first_byte_at_once_then_silence_is_cut(behind_nginx):
    """Started at once, then 2 s of silence: the status is 200, but the body
    is cut without its last chunk, 1 to 2 s after the request."""
    status, body, seconds = get(behind_nginx, "/work?seconds=2&heartbeat_ms=0")
    assert status == "HTTP/1.1 200 OK"
    assert b": started" in body
    assert b"event: result" not in body
    assert not body.endswith(b"\r\n0\r\n\r\n")
    assert LIMIT <= seconds < 2


def test_a_heartbeat_under_the_limit_survives(behind_nginx):
    """The same 2 s of work with a comment every 300 ms: the whole stream,
    result included, comes through a proxy that allows 1 s of silence."""
    status, body, seconds = get(behind_nginx, "/work?seconds=2&heartbeat_ms=300")
    assert status == "HTTP/1.1 200 OK"
    assert b"event: result" in body and b'"answer": 42' in body
    assert body.count(b": keep-alive") >= 3
    assert body.endswith(b"\r\n0\r\n\r\n")
    assert seconds >= 2


# -- send_timeout: a client that stops taking what nginx sends ----------------

SEND_TIMEOUT = 1  # seconds: nginx's send_timeout
SMALL = 4096  # bytes: nginx's sndbuf= and the client's SO_RCVBUF, so they fill
# nginx keeps a timer that is re-armed less than 300 ms later where it is
# (NGX_TIMER_LAZY_DELAY), so it may fire up to 0.3 s early.
EARLIEST = SEND_TIMEOUT - 0.3
LATEST = 10  # seconds: room for a loaded machine
TIMING = "log_format timing '$msec $status $bytes_sent';"


def send_timeout_proxy(upstream, logs):
    """nginx with send_timeout 1s, logging at info level and at error level
    (nginx's default), with an access log that says when each request
    ended and how many bytes nginx sent."""
    return f"""
        error_log {logs}/info.log info;
        error_log {logs}/error.log error;
        access_log {logs}/access.log timing;
        location / {{
            proxy_pass {upstream};
            proxy_buffering off;
            send_timeout {SEND_TIMEOUT}s;
        }}"""


@pytest.fixture(scope="module")
def probe():
    """snippets/servers.py on gunicorn's gthread worker: /fast writes
    numbered 64-byte lines as fast as it can, /ended says how it ended."""
    with gunicorn(
        "snippets.servers:app", worker_class="gthread", args=("--threads", "4")
    ) as (url, _):
        yield url


@pytest.fixture(scope="module")
def sse_app():
    with gunicorn(
        "snippets.sse:app", worker_class="gthread", args=("--threads", "4")
    ) as (url, _):
        yield url


def proxy_with_send_timeout(upstream, logs):
    """nginx in front of ``upstream`` with a small send buffer; yields its URL."""
    return nginx_http(
        TIMING, send_timeout_proxy(upstream, logs), listen=f" sndbuf={SMALL}"
    )


def small_client(url, path, headers=()):
    """A request from a socket whose receive buffer is SMALL (set before
    connecting, so the window is small from the first byte)."""
    parts = urlsplit(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)
    sock.settimeout(LATEST)
    sock.connect((parts.hostname, parts.port))
    head = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", *headers]
    sock.sendall(("\r\n".join([*head, "Connection: close"]) + "\r\n\r\n").encode())
    return sock


def ended_request(logs):
    """nginx's access log line, once the request has ended: when (epoch
    seconds), the status it logged and the bytes it sent."""
    access = logs / "access.log"
    assert wait_until(lambda: access.exists() and access.read_text(), LATEST + 5)
    msec, status, sent = access.read_text().split()
    return float(msec), int(status), int(sent)


def probe_ended(url, probe_id):
    """How the probe's generator ended, once it has (404 until then)."""
    answer = {}

    def ended():
        try:
            with urllib.request.urlopen(f"{url}/ended?id={probe_id}") as response:
                answer.update(json.load(response))
        except urllib.error.HTTPError:
            return False
        return True

    assert wait_until(ended, LATEST)
    return answer


def lines_in_order(body):
    """The probe's numbered lines are 1, 2, 3...: the client got a prefix."""
    numbers = [int(line[:9]) for line in body.split(b"\n")[:-1]]
    return numbers == list(range(1, len(numbers) + 1))


@pytest.fixture(scope="module")
def stalled(probe, tmp_path_factory):
    """A client reads the headers of an endless fast stream, then stops
    reading; once nginx has ended the request, it reads again to the end."""
    logs = tmp_path_factory.mktemp("stalled")
    with proxy_with_send_timeout(probe, logs) as url:
        sent = time.time()
        with small_client(url, "/fast?lines=10000000&batch=10&id=stalled") as sock:
            raw = read_until(sock, b"\r\n\r\n")
            stopped = time.time()
            cut, status, bytes_sent = ended_request(logs)
            time.sleep(SEND_TIMEOUT)  # the client is still away
            error = None
            try:
                while data := sock.recv(65536):
                    raw += data
            except OSError as exc:
                error = exc
        head, _, body = raw.partition(b"\r\n\r\n")
        data, complete = dechunk(body)
        yield {
            "sent": sent,
            "stopped": stopped,
            "cut": cut,
            "logged_status": status,
            "bytes_sent": bytes_sent,
            "received": len(raw),
            "status_line": head.split(b"\r\n")[0],
            "data": data,
            "complete": complete,
            "read_error": error,
            "info_log": (logs / "info.log").read_text(),
            "error_log": (logs / "error.log").read_text(),
            "app": probe_ended(probe, "stalled"),
        }


def test_a_client_that_stops_reading_is_cut_after_send_timeout(stalled):
    """About a second after the client stopped reading, nginx ended the
    request. Measured from the request, as nginx may have filled the buffers
    and started its timer before the client read the headers."""
    assert stalled["cut"] - stalled["sent"] >= EARLIEST
    assert stalled["cut"] - stalled["stopped"] <= LATEST


def test_the_cut_client_reads_a_truncated_body_then_the_end(stalled):
    """Reading again, the client gets the bytes nginx had sent, then the end
    of the connection (no reset): a 200 whose chunked body has no last
    chunk, the stream's first lines in order."""
    assert stalled["read_error"] is None
    assert stalled["status_line"] == b"HTTP/1.1 200 OK"
    assert stalled["received"] == stalled["bytes_sent"]
    assert not stalled["complete"]
    assert lines_in_order(stalled["data"])
    assert 0 < len(stalled["data"]) < 100_000


def test_the_cut_is_logged_at_info_level_only(stalled):
    """nginx's error log says "client timed out ... while sending to client"
    at info level; at its default level (error) it says nothing; the access
    log says 200."""
    message = "client timed out (110: Connection timed out) while sending to client"
    assert message in stalled["info_log"]
    assert "timed out" not in stalled["error_log"]
    assert stalled["logged_status"] == 200


def test_the_app_generator_is_closed_at_the_cut(stalled):
    """The app's generator, still writing, got GeneratorExit within 2 s of
    the cut (under 50 ms here), having made at least 10 times what the client
    received: the buffers between gunicorn and nginx took the rest."""
    app = stalled["app"]
    assert app["how"] == "GeneratorExit"
    assert abs(app["at"] - stalled["cut"]) < 2
    assert app["sent"] * 64 >= 10 * len(stalled["data"])


@pytest.fixture(scope="module", params=[1, 0.25], ids=["every-1s", "every-250ms"])
def trickle(request, probe, tmp_path_factory):
    """A client reads 1 byte of a 64 kB stream (1,000 lines) every second,
    or every quarter of a second, until nginx ends the request."""
    every = request.param
    logs = tmp_path_factory.mktemp("trickle")
    with proxy_with_send_timeout(probe, logs) as url:
        access = logs / "access.log"
        sent = time.time()
        read, waiting = 0, []
        probe_id = f"trickle{int(every * 1000)}"
        with small_client(url, f"/fast?lines=1000&batch=10&id={probe_id}") as sock:
            while not access.exists() or not access.read_text():
                assert time.time() - sent < LATEST, "nginx never ended the request"
                read += len(sock.recv(1))
                # bytes that had arrived and that the client had not read yet
                waiting.append(struct.unpack("i", ioctl(sock, FIONREAD, b"\0" * 4))[0])
                time.sleep(every)
            cut, _, bytes_sent = ended_request(logs)
        yield {
            "sent": sent,
            "cut": cut,
            "read": read,
            "waiting": waiting,
            "bytes_sent": bytes_sent,
            "info_log": (logs / "info.log").read_text(),
            "app": probe_ended(probe, probe_id),
        }


def test_a_client_reading_one_byte_a_second_is_cut_too(trickle):
    """A client that reads 1 byte every second, or every quarter of a
    second, is cut about a second after it began, as if it had stopped,
    before nginx sent half of the 64 kB: after the first (the headers'),
    each byte it read had over a thousand more waiting in its own buffer."""
    assert EARLIEST <= trickle["cut"] - trickle["sent"] <= LATEST
    assert "client timed out" in trickle["info_log"]
    assert trickle["read"] == len(trickle["waiting"]) >= 1
    assert all(waiting > 1000 for waiting in trickle["waiting"][1:])
    assert trickle["bytes_sent"] < 64_000 / 2


def test_a_short_response_ends_normally_in_the_app_although_cut(trickle):
    """All 1,000 lines fit in the buffers between gunicorn and nginx: the
    generator ran to its end and never learned that the client was cut."""
    assert trickle["app"]["how"] == "completed"
    assert trickle["app"]["sent"] == 1000
    assert trickle["app"]["at"] < trickle["cut"]


DRAIN_EVERY = 0.25  # seconds
BUDGET = 16_384  # bytes: the most the client takes each time


def drain(sock):
    """What has arrived, up to BUDGET bytes (at least one; b"" at the end):
    a client that takes what it is sent, but no faster than it can."""
    data = sock.recv(BUDGET)
    sock.setblocking(False)
    try:
        while len(data) < BUDGET and (more := sock.recv(BUDGET - len(data))):
            data += more
    except BlockingIOError:
        pass
    finally:
        sock.setblocking(True)
    return data


def test_a_client_that_keeps_up_is_not_cut(probe, tmp_path):
    """A slow client that takes what has arrived, at most 16 kB every 0.25 s,
    gets all 6,000 lines (384 kB) over more than 5 times send_timeout,
    whole, with the last chunk; nginx logs no timeout."""
    with proxy_with_send_timeout(probe, tmp_path) as url:
        started = time.time()
        raw = b""
        with small_client(url, "/fast?lines=6000&batch=10&id=keeps") as sock:
            while data := drain(sock):
                raw += data
                time.sleep(DRAIN_EVERY)
        took = time.time() - started
        _, status, bytes_sent = ended_request(tmp_path)
    data, complete = dechunk(raw.partition(b"\r\n\r\n")[2])
    assert complete and len(data) == 6000 * 64 and lines_in_order(data)
    assert took >= 5 * SEND_TIMEOUT
    assert (status, bytes_sent) == (200, len(raw))
    assert "timed out" not in (tmp_path / "info.log").read_text()
    assert probe_ended(probe, "keeps")["how"] == "completed"


def complete_events(body):
    """The ids of the events that arrived whole (an EventSource drops the
    unfinished last one)."""
    text, _ = dechunk(body)
    events = text.split(b"\n\n")[:-1]
    return [int(m[1]) for e in events if (m := re.search(rb"^id: (\d+)$", e, re.M))]


def test_a_cut_sse_client_resumes_with_last_event_id(sse_app, tmp_path):
    """A client that stalls on 1,000 events is cut; it reconnects with the
    id of the last whole event and gets the rest: 0 lost, 0 duplicated."""
    total = 1000
    with proxy_with_send_timeout(sse_app, tmp_path) as url:
        with small_client(url, f"/events?limit={total}&every=0") as sock:
            raw = read_until(sock, b"\r\n\r\n")
            ended_request(tmp_path)  # nginx cut it
            while data := sock.recv(65536):
                raw += data
        first = complete_events(raw.partition(b"\r\n\r\n")[2])
        assert "client timed out" in (tmp_path / "info.log").read_text()
        assert 0 < len(first) < total
        last = first[-1]
        with small_client(
            url, f"/events?limit={total - last}&every=0", (f"Last-Event-ID: {last}",)
        ) as sock:
            raw = b""
            while data := drain(sock):
                raw += data
    second = complete_events(raw.partition(b"\r\n\r\n")[2])
    assert first + second == list(range(1, total + 1))
