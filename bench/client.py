"""A fast HTTP/1.1 client for the benchmarks: a raw socket read into one
reused buffer, so the client costs as little as it can and the same for every
server. It sends ``Connection: close`` and reads until the server closes, so
it works for bodies with ``Content-Length`` and for chunked ones alike.
"""

import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

BUFFER_SIZE = 1024 * 1024


@dataclass
class Fetch:
    status: int
    ttfb: float  # seconds from connect to the first body byte
    total: float  # seconds from connect to the end of the body
    body_bytes: int  # bytes after the headers (chunk framing included)


def fetch(url, buffer=None, timeout=120.0):
    """GET ``url`` and read the whole response as fast as possible."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n"
    ).encode()
    buffer = buffer if buffer is not None else bytearray(BUFFER_SIZE)
    view = memoryview(buffer)
    start = time.perf_counter()
    with socket.create_connection((parts.hostname, parts.port), timeout) as sock:
        sock.sendall(request)
        head, header_end, ttfb = b"", -1, None
        while header_end < 0:  # read until the end of the headers
            n = sock.recv_into(view)
            if not n:
                raise ConnectionError(f"{url}: closed before the headers ended")
            head += bytes(view[:n])
            header_end = head.find(b"\r\n\r\n")
        body = len(head) - header_end - 4
        status = int(head.split(b" ", 2)[1])
        if body:
            ttfb = time.perf_counter() - start
        while n := sock.recv_into(view):
            if ttfb is None:
                ttfb = time.perf_counter() - start
            body += n
        total = time.perf_counter() - start
    if status != 200:
        raise RuntimeError(f"{url}: HTTP {status}")
    return Fetch(status, ttfb if ttfb is not None else total, total, body)
