"""uWSGI 2.0.30 (the pyuwsgi wheel) serving snippets/uwsgi.py, and
nginx in front of it with uwsgi_pass: framing, harakiri, offloading,
disconnects, processes and threads. Proof for deploy/uwsgi.

Every event says when it was made; the client notes when it arrived (one
machine, one clock). Instances start together (each needs about a second to
load the app and another to stop), once per module where they can be shared.
"""

import json
import re
import selectors
import socket
import struct
import threading
import time
import urllib.request
import uuid
from importlib import metadata
from urllib.error import HTTPError

import pytest

from tests.servers import (
    nginx,
    read_log,
    read_until,
    started_together,
    uwsgi,
    wait_until,
)

pytestmark = pytest.mark.live

TARGET = "snippets.uwsgi:app"
CLOSING = "tests.deploy.uwsgi_closing:app"  # the same app, logging each close
EVENT = re.compile(rb"data: (\d+) (\d+\.\d+) \.*\n\n")
END = b"event: end\ndata: complete\n\n"


# -- a raw client ------------------------------------------------------------------


def get(port, path, *, version="1.1", timeout=10.0):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(f"GET {path} HTTP/{version}\r\nHost: x\r\n\r\n".encode())
    return sock


def read_head(sock):
    """(status line, {lower-case name: value}, what came after the head)."""
    data = read_until(sock, b"\r\n\r\n")
    head, _, rest = data.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    return status, headers, rest


def read_body(sock, rest, wait, *, chunked=False):
    """Read until the server closes, ``wait`` seconds of silence, or (for a
    chunked body) its last chunk; returns (body, "closed" | "open",
    [(bytes so far, arrival time)])."""
    sock.settimeout(wait)
    body, arrivals = rest, [(rest, time.time())]
    try:
        while not (chunked and dechunk(body)[1]) and (data := sock.recv(65536)):
            body += data
            arrivals.append((body, time.time()))
        return body, "open" if chunked and dechunk(body)[1] else "closed", arrivals
    except TimeoutError:
        return body, "open", arrivals


def dechunk(body):
    """The data of a chunked body, and whether its last chunk (0) came."""
    data = b""
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return data, body == b"\r\n"
        data, body = data + body[:size], body[size + 2 :]
    return data, False


def arrived_before_next_made(arrivals, body):
    """For each event: did its last byte arrive before the next one was made?"""
    made = [float(m[2]) for m in EVENT.finditer(body)]
    ends = [m.end() for m in EVENT.finditer(body)]
    first_seen = [next(t for data, t in arrivals if len(data) >= e) for e in ends]
    return [seen < later for seen, later in zip(first_seen, made[1:], strict=False)]


def ping(port, timeout):
    """Does /ping answer within ``timeout`` seconds? (The socket is kept
    open by the caller, so a queued request is not withdrawn.)"""
    sock = get(port, "/ping", timeout=timeout)
    try:
        return sock, sock.recv(65536).endswith(b"pong\n")
    except TimeoutError:
        return sock, False


def ended(port, stream_id):
    url = f"http://127.0.0.1:{port}/ended/{stream_id}"
    found = {}

    def check():
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                found.update(json.load(response))
        except HTTPError:  # 404 until the generator has ended
            return False
        return True

    assert wait_until(check, timeout=15), "the generator never ended"
    return found


# -- the instances: seven, started at once, shared by every test --------------

# The --http router forwards to the instance's first socket: list --socket
# first, or the router would speak the uwsgi protocol to --http-socket.
ALL = ("--socket", "--http", "--http-socket", "--http11-socket")
BIG = 64 * 1024 * 1024
TRIED = 12
WINDOW_S = 1.5
SHAPES = {"1x1": (1, 1), "2x1": (2, 1), "1x4": (1, 4), "2x3": (2, 3)}


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    files = tmp_path_factory.mktemp("files")
    with open(files / "big.bin", "wb") as out:
        out.truncate(BIG)  # sparse: 64 MiB on the wire, nothing on disk
    return files


@pytest.fixture(scope="module")
def instances(big_file):
    """{name: ({option: port}, master)}. Options global to an instance are
    combined only where they cannot meet: the harakiri instance's router also
    serves the short keep-alive + auto-chunked framing tests, and the
    2-process shapes carry the --socket-timeout 1 and --http-auto-chunked
    cases on sockets that the shape measurement does not use."""
    env = {"FLASK_FILES_DIR": str(big_file)}
    one = ("--processes", "1")
    chunked = ("--http-keepalive", "--http-auto-chunked")
    launchers = {
        # 1 process x 4 threads: framing, nginx, disconnects, the 1x4 shape
        "base": uwsgi(TARGET, *one, "--threads", "4", listen=ALL),
        "keepalive": uwsgi(
            TARGET, *one, "--threads", "4", "--http-keepalive", listen=ALL[:2]
        ),
        "harakiri": uwsgi(
            CLOSING, "--processes", "2", "--harakiri", "2", *chunked, listen=ALL[:3]
        ),
        # 1 process x 1 thread: offloading, the 1x1 shape
        "plain": uwsgi(TARGET, *one, env=env),
        "offload": uwsgi(TARGET, *one, "--offload-threads", "1", env=env),
        "2x1": uwsgi(
            TARGET,
            *("--processes", "2", "--socket-timeout", "1"),
            listen=("--http-socket", "--http11-socket"),
        ),
        "2x3": uwsgi(
            TARGET,
            *("--processes", "2", "--threads", "3", "--http-auto-chunked"),
            listen=ALL[:3],
        ),
    }
    with started_together(launchers) as running:
        yield running


@pytest.fixture(scope="module")
def servers(instances):
    return {name: ports for name, (ports, _) in instances.items()}


def test_the_wheel_is_uwsgi_2_0_30(instances):
    """pyuwsgi comes as a prebuilt (manylinux) wheel: nothing to compile."""
    wheel = metadata.distribution("pyuwsgi").read_text("WHEEL")
    assert "Tag: cp311-cp311-manylinux" in wheel
    assert "*** Starting uWSGI 2.0.30 (64bit)" in read_log(instances["base"][1])


# -- framing ------------------------------------------------------------------------

# mode: (the instance, the option it listens with)
MODES = {
    "http-socket": ("base", "--http-socket"),
    "http11-socket": ("base", "--http11-socket"),
    "http": ("base", "--http"),
    "http-keepalive": ("keepalive", "--http"),
    "http-auto-chunked": ("2x3", "--http"),
    "http-keepalive-auto-chunked": ("harakiri", "--http"),
}
# mode: (Transfer-Encoding, Connection header, the body ends by, keep-alive
# after a response with a Content-Length)
FRAMING = {
    "http-socket": (None, None, "closed", False),
    "http11-socket": (None, None, "open", True),
    "http": (None, None, "closed", False),
    "http-keepalive": (None, "close", "closed", True),
    "http-auto-chunked": (None, None, "closed", False),
    "http-keepalive-auto-chunked": ("chunked", None, "chunked", True),
}


def port_of(servers, mode):
    instance, option = MODES[mode]
    return servers[instance][option]


@pytest.mark.parametrize("mode", list(MODES))
def test_generator_framing(servers, mode):
    """Two events 300 ms apart and the end event, asked for in HTTP/1.1."""
    encoding, connection, ends_by, _ = FRAMING[mode]
    with get(port_of(servers, mode), "/events?count=2&interval_ms=300") as sock:
        status, headers, rest = read_head(sock)
        chunked = headers.get("transfer-encoding") == "chunked"
        body, how, arrivals = read_body(sock, rest, wait=1.0, chunked=chunked)
    assert status == "HTTP/1.1 200 OK"
    assert "content-length" not in headers
    assert headers.get("transfer-encoding") == encoding
    assert headers.get("connection") == connection
    if encoding == "chunked":
        body, terminated = dechunk(body)
        assert terminated and how == "open"  # framed: the connection stays
    else:
        assert how == ends_by
    assert body.endswith(END)
    assert arrived_before_next_made(arrivals, body) == [True]  # it streams


@pytest.mark.parametrize("mode", list(MODES))
def test_http_1_0_request_gets_http_1_0_and_a_close(servers, mode):
    with get(
        port_of(servers, mode), "/events?count=1&interval_ms=0", version="1.0"
    ) as sock:
        status, headers, rest = read_head(sock)
        body, how, _ = read_body(sock, rest, wait=2.0)
    assert status == "HTTP/1.0 200 OK"
    assert "transfer-encoding" not in headers and "content-length" not in headers
    assert (how, body.endswith(END)) == ("closed", True)


def second_request_answered(sock):
    sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        return sock.recv(65536).endswith(b"pong\n")
    except (TimeoutError, ConnectionError):
        return False


def test_keep_alive_and_auto_chunked_reuse_the_connection_after_a_stream(servers):
    """The only mode whose stream ends by its framing: the connection then
    takes a second request. (Every other mode ends the body by closing, or
    never ends it: see test_generator_framing.)"""
    port = port_of(servers, "http-keepalive-auto-chunked")
    with get(port, "/events?count=1&interval_ms=0", timeout=2) as sock:
        _, _, rest = read_head(sock)
        read_until(sock, b"0\r\n\r\n", rest)
        assert second_request_answered(sock)


@pytest.mark.parametrize("mode", list(MODES))
def test_keep_alive_after_a_response_with_a_length(servers, mode):
    port = port_of(servers, mode)
    with get(port, "/ping", timeout=2) as sock:
        read_until(sock, b"pong\n")
        assert second_request_answered(sock) is FRAMING[mode][3]


@pytest.mark.parametrize(
    ("instance", "low", "high"), [("base", 3.5, 6), ("2x1", 0.5, 2.5)]
)
def test_http11_socket_ends_an_unframed_body_after_the_socket_timeout(
    servers, instance, low, high
):
    """No length, no chunks, no close: the client cannot find the end of the
    body until uWSGI drops the idle connection (--socket-timeout: 4 s by
    default, then 1 s)."""
    port = servers[instance]["--http11-socket"]
    with get(port, "/events?count=1&interval_ms=0") as sock:
        _, _, rest = read_head(sock)
        body = read_until(sock, END, rest)
        done = time.monotonic()
        assert sock.recv(65536) == b""  # blocks until uWSGI closes
        waited = time.monotonic() - done
    assert body.endswith(END)
    assert low < waited < high


# -- what --socket (the uwsgi protocol) sends nginx -------------------------------


def uwsgi_packet(path):
    """A request in the uwsgi protocol, as nginx's uwsgi_pass sends it."""
    params = {
        "REQUEST_METHOD": "GET",
        "REQUEST_URI": path,
        "PATH_INFO": path.partition("?")[0],
        "QUERY_STRING": path.partition("?")[2],
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "x",
        "SERVER_PORT": "80",
        "HTTP_HOST": "x",
    }
    body = b"".join(
        struct.pack("<H", len(k)) + k.encode() + struct.pack("<H", len(v)) + v.encode()
        for k, v in params.items()
    )
    return struct.pack("<BHB", 0, len(body), 0) + body


HEAD_BYTES = 115  # status line and headers of /events, up to the blank line


def test_socket_sends_an_http_head_and_an_unframed_body(servers):
    """To nginx, uWSGI answers with a plain HTTP head (HEAD_BYTES long for
    /events) and a body that ends when it closes the connection."""
    port = servers["base"]["--socket"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(uwsgi_packet("/events?count=1&interval_ms=0"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Transfer-Encoding" not in head and b"Content-Length" not in head
    assert len(head) + 4 == HEAD_BYTES
    assert body.endswith(END)


# -- nginx, uwsgi_pass and uwsgi_buffering ------------------------------------------

PAGE = 4096  # nginx's default uwsgi_buffer_size and uwsgi_buffers: one page
# Event size (bytes, "data: ... \n\n") -> how many events the client had been
# sent when event 1 reached it: 1 = at once, 2 = with event 2, 3 = at the end.
# The model: nginx passes on only full buffers; a part-filled one waits.
HELD = {  # with 4 KiB buffers, the first buffer holds the head and event 1
    800: 3,  # three small events never fill a buffer: all at the end
    1987: 3,  # head + 2 events = 4089 bytes: still not full
    1993: 2,  # head + 2 events = 4101: the buffer fills with event 2
    PAGE - HEAD_BYTES: 1,  # head + event 1 fill the buffer exactly: at once
    PAGE - HEAD_BYTES + 10: 3,  # 10 bytes spill into a buffer event 2 leaves short
    20_000: 2,  # a big event still waits: its last bytes sit in a short buffer
}
HELD_8K = {3000: 3, 4041: 2, 2 * PAGE - HEAD_BYTES: 1}  # uwsgi_buffer_size 8k


def uwsgi_location(port, settings=""):
    return f"""location / {{
        include /etc/nginx/uwsgi_params;
        uwsgi_pass 127.0.0.1:{port};
        {settings}
    }}"""


IGNORE_HEADER = "uwsgi_ignore_headers X-Accel-Buffering;"  # as if it were absent
EIGHT_K = "uwsgi_buffer_size 8k; uwsgi_buffers 8 8k;"


@pytest.fixture(scope="module")
def proxies(servers):
    """nginx in front of the base instance's --socket, four ways."""
    port = servers["base"]["--socket"]
    configs = {
        "header": "",
        "buffered": IGNORE_HEADER,
        "buffered_8k": IGNORE_HEADER + EIGHT_K,
        "buffering_off": IGNORE_HEADER + "uwsgi_buffering off;",
        "read_timeout": "uwsgi_read_timeout 1s;",
    }
    with started_together(
        {name: nginx(uwsgi_location(port, s)) for name, s in configs.items()}
    ) as running:
        yield running


def events_reached_client(url, size, count=3, interval_ms=250):
    """For each event, how many events had been made when it reached the
    client (1 for event 1 and 2 for event 2 mean: at once)."""
    port = int(url.rsplit(":", 1)[1])
    path = f"/events?count={count}&interval_ms={interval_ms}&pad={size - 28}"
    with get(port, path) as sock:
        _, headers, rest = read_head(sock)
        raw, _, arrivals = read_body(sock, rest, wait=5, chunked=True)
    assert headers.get("transfer-encoding") == "chunked"  # nginx chunks it
    assert "x-accel-buffering" not in headers  # nginx consumes the header
    body, terminated = dechunk(raw)
    assert terminated and body.endswith(END)
    events = list(EVENT.finditer(body))
    assert len(events[0].group(0)) == size
    made = [float(m[2]) for m in events]
    received = [(len(dechunk(data)[0]), t) for data, t in arrivals]
    seen = [next(t for n, t in received if n >= e.end()) for e in events]
    return [sum(1 for m in made if m <= t) for t in seen]


@pytest.mark.nginx
@pytest.mark.parametrize("size", list(HELD))
def test_default_buffering_holds_an_event_until_its_buffer_fills(proxies, size):
    assert events_reached_client(proxies["buffered"], size)[0] == HELD[size]


@pytest.mark.nginx
@pytest.mark.parametrize("size", list(HELD_8K))
def test_bigger_buffers_hold_bigger_events(proxies, size):
    assert events_reached_client(proxies["buffered_8k"], size)[0] == HELD_8K[size]


@pytest.mark.nginx
@pytest.mark.parametrize("config", ["header", "buffering_off"])
@pytest.mark.parametrize("size", [100, 1993, 20_000])
def test_x_accel_buffering_or_buffering_off_passes_every_event(proxies, config, size):
    assert events_reached_client(proxies[config], size) == [1, 2, 3]


@pytest.mark.nginx
def test_uwsgi_read_timeout_cuts_a_silent_stream(proxies):
    """Two events 2 s apart against uwsgi_read_timeout 1s: the client gets the
    first event, then a chunked body without its last chunk."""
    port = int(proxies["read_timeout"].rsplit(":", 1)[1])
    with get(port, "/events?count=2&interval_ms=2000") as sock:
        _, _, rest = read_head(sock)
        raw, how, _ = read_body(sock, rest, wait=5)
    body, terminated = dechunk(raw)
    assert how == "closed" and not terminated
    assert [m[1] for m in EVENT.finditer(body)] == [b"1"]


# -- disconnects --------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--http-socket", "--http"])
def test_generator_closed_on_the_second_write_after_the_client_left(servers, option):
    """The client reads event 1 and hangs up. Event 2 is written (the kernel
    accepts it), the write of event 3 fails, and uWSGI closes the generator."""
    port = servers["base"][option]
    stream_id = uuid.uuid4().hex[:16]
    with get(port, f"/events?count=100000&interval_ms=200&id={stream_id}") as sock:
        read_until(sock, b"\n\n", read_head(sock)[2])
    assert ended(port, stream_id) == {"how": "GeneratorExit", "sent": 3}


def test_a_client_that_resets_ends_the_generator_one_write_sooner(servers):
    """The client reads event 1 and resets the connection (SO_LINGER 0: an RST,
    not a FIN). On ``--http-socket`` the very next write fails: ``sent`` is 2,
    where a client that closes gives 3."""
    port = servers["base"]["--http-socket"]
    stream_id = uuid.uuid4().hex[:16]
    with get(port, f"/events?count=100000&interval_ms=200&id={stream_id}") as sock:
        read_until(sock, b"\n\n", read_head(sock)[2])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    assert ended(port, stream_id) == {"how": "GeneratorExit", "sent": 2}


# -- harakiri -----------------------------------------------------------------------


def long_stream(port, results, key):
    """20 events 200 ms apart: 4 s of a stream that never goes silent."""
    started = time.monotonic()
    with get(port, "/events?count=20&interval_ms=200") as sock:
        _, headers, rest = read_head(sock)
        chunked = headers.get("transfer-encoding") == "chunked"
        raw, how, _ = read_body(sock, rest, wait=8, chunked=chunked)
    results[key] = (time.monotonic() - started, headers, raw, how)


def test_harakiri_kills_a_stream_that_keeps_writing(instances):
    """--harakiri 2 against a 4 s stream: the worker is killed 1 to 3.5 s in
    (the master checks once a second), and the body looks complete: closed
    on --http-socket, a proper last chunk from the --http router. Only the
    missing end event tells the client. uWSGI never closes the killed
    response, so the generator's ``finally`` does not run; the pings after
    it are closed, as every finished response is."""
    ports, proc = instances["harakiri"]
    results = {}
    threads = [
        threading.Thread(target=long_stream, args=(ports[option], results, option))
        for option in ("--http-socket", "--http")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for option, (elapsed, headers, raw, how) in results.items():
        if option == "--http":
            assert headers["transfer-encoding"] == "chunked"
            body, terminated = dechunk(raw)
            assert terminated and how == "open"  # and ready for another request
        else:
            body = raw
            assert how == "closed" and 1 <= elapsed < 3.5
        events = [int(m[1]) for m in EVENT.finditer(body)]
        assert 1 <= len(events) < 20 and events == list(range(1, len(events) + 1))
        assert not body.endswith(END)
    assert set(results) == {"--http-socket", "--http"}
    assert read_log(proc).count("HARAKIRI ON WORKER") == 2  # one per stream
    pings = read_log(proc).count("closed: /ping?")  # framing tests ping it too
    for option in ("--http-socket", "--http"):  # new workers answer
        sock, answered = ping(ports[option], timeout=10)
        sock.close()
        assert answered
    assert wait_until(lambda: read_log(proc).count("closed: /ping?") == pings + 2)
    assert "closed: /events?count=20&" not in read_log(proc)


# -- offloading ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def offload(servers):
    """One process, one thread each; one with an offload thread."""
    return {name: servers[name]["--http-socket"] for name in ("plain", "offload")}


def stalled(port, path):
    """A request whose client reads nothing: the server's writes block."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    read_head(sock)  # the worker is at work on it
    return sock


@pytest.mark.parametrize(
    ("instance", "path", "worker_free"),
    [
        ("plain", "/files/big.bin", False),
        ("offload", "/files/big.bin", True),
        ("offload", "/events?count=100000&interval_ms=100", False),
    ],
    ids=["file", "file-offloaded", "generator-with-offload-threads"],
)
def test_offload_frees_the_worker_only_for_a_file(offload, instance, path, worker_free):
    """With the only worker busy sending to a client that does not read, is
    /ping answered (within 3 s), or not (nothing within 1 s)? Then the slow
    client leaves."""
    port = offload[instance]
    slow = stalled(port, path)
    # More time for a yes than for a no: a loaded machine answers slowly.
    sock, answered = ping(port, timeout=3.0 if worker_free else 1.0)
    slow.close()
    try:
        assert answered is worker_free
        if not answered:  # it was queued, not lost: answered once the worker is free
            sock.settimeout(10)
            assert read_until(sock, b"pong\n")
    finally:
        sock.close()


def test_an_offloaded_download_arrives_whole(offload):
    with get(offload["offload"], "/files/big.bin") as sock:
        _, headers, rest = read_head(sock)
        received = len(rest)
        while received < BIG and (data := sock.recv(1 << 20)):
            received += len(data)
    assert int(headers["content-length"]) == received == BIG


# -- processes and threads ----------------------------------------------------------

SHAPE_OF = {"1x1": "plain", "2x1": "2x1", "1x4": "base", "2x3": "2x3"}


@pytest.fixture(scope="module")
def shapes(servers):
    return {shape: servers[name]["--http-socket"] for shape, name in SHAPE_OF.items()}


def streams_at_once(port):
    """Open TRIED never-ending streams; count those with a first byte in time."""
    selector = selectors.DefaultSelector()
    socks = [get(port, "/events?count=100000&interval_ms=200") for _ in range(TRIED)]
    try:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        served = set()
        deadline = time.monotonic() + WINDOW_S
        while len(served) < TRIED and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(timeout=left):
                served.add(key.fileobj)
                selector.unregister(key.fileobj)
        return len(served)
    finally:
        selector.close()
        for sock in socks:
            sock.close()


def test_streams_at_once_are_processes_times_threads(shapes):
    results = {}

    def measure(name, port):
        results[name] = streams_at_once(port)

    threads = [threading.Thread(target=measure, args=item) for item in shapes.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == {name: p * t for name, (p, t) in SHAPES.items()}
