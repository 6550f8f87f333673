"""Platform timeouts reproduced with nginx on 127.0.0.1, scaled down to
1 s: a first byte that comes too late and a stream that goes silent; and
snippets/heartbeat.py's answers to them."""

import time

import pytest

from snippets.heartbeat import app
from tests.servers import nginx, open_request

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
    the client gets nginx's 504, never the answer (which the app does make)."""
    status, _, seconds = get(behind_nginx, "/answer?seconds=2")
    assert status == "HTTP/1.1 504 Gateway Time-out"
    assert LIMIT <= seconds < 2


def test_a_first_byte_at_once_then_silence_is_cut(behind_nginx):
    """Started at once, then 2 s of silence: the status is 200, but the body
    is cut a second after the first byte, without its last chunk."""
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
