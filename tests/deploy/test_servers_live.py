"""The server tables on deploy/servers, measured again: every cell must equal
the committed docs/deploy/_data/servers.json (regenerate it with
``python -m tests.deploy_matrix`` when a server really changed).

Every server is measured once, in parallel, by one module-scoped fixture."""

import json
import socket
import struct
import time
import uuid

import pytest
from waitress import wasyncore

from tests.deploy_matrix import (
    DATA,
    FAMILIES,
    LONG_INTERVAL_MS,
    SERVERS,
    TARGET,
    TIMEOUT_S,
    RawStream,
    cells,
    family_csv,
    get_json,
    measure_all,
    server_csv,
    to_csv,
)
from tests.servers import waitress

# The module fixture measures every server at once: about a minute on a quiet
# 2-core machine, more on a loaded one.
pytestmark = [pytest.mark.live, pytest.mark.timeout(600)]

COMMITTED = {row["key"]: row for row in json.loads((DATA / "servers.json").read_text())}
NOTICED = 2  # the index of "Client gone noticed" in cells()
AT_ONCE = 6  # the index of "Slow streams at once"


@pytest.fixture(scope="module")
def measured():
    return {row["key"]: row for row in measure_all()}


@pytest.fixture(params=list(SERVERS))
def server(request, measured):
    """(measured now, committed) for one server."""
    return measured[request.param], COMMITTED[request.param]


def test_every_server_is_in_the_committed_table():
    assert list(COMMITTED) == list(SERVERS)


def test_every_command_is_on_the_page():
    """The commands under each tab are the ones measured."""
    page = (DATA.parent / "servers.rst").read_text()
    for entry in SERVERS.values():
        assert f"         {entry['command']}\n" in page, entry["command"]


def test_committed_csv_is_rendered_from_committed_json():
    assert (DATA / "servers.csv").read_text() == to_csv(COMMITTED.values())
    for family in FAMILIES:
        table = (DATA / f"servers-{family}.csv").read_text()
        assert table == family_csv(COMMITTED.values(), family)
    for key, row in COMMITTED.items():
        assert (DATA / f"server-{key}.csv").read_text() == server_csv(row)


def test_streams_incrementally(server):
    """First chunk on the client before the generator made the last one."""
    measured, committed = server
    assert measured["streams"] == committed["streams"]
    assert measured["raw_first_arrived_before_last_made_ms"] > 300  # one interval


def test_uses_chunked_encoding(server):
    measured, committed = server
    assert (measured["http"], measured["chunked"]) == (
        committed["http"],
        committed["chunked"],
    )


def test_notices_disconnect_after_heartbeats(server):
    """The generator gets GeneratorExit a number of heartbeats after the
    client hung up (heartbeat every HEARTBEAT_MS ms), one fewer or up to
    three more on a loaded machine (make test runs four workers on two
    cores: waitress was seen at five for its three); or it never ends (the
    ASGI bridges)."""
    measured, committed = server
    assert measured["disconnect_how"] == committed["disconnect_how"]
    if committed["disconnect_heartbeats"] is None:
        assert measured["disconnect_heartbeats"] is None
    else:
        assert committed["disconnect_how"] == "GeneratorExit"
        beats = measured["disconnect_heartbeats"] - committed["disconnect_heartbeats"]
        assert -1 <= beats <= 3


def test_generator_closed_after_the_client_left(server):
    """A client leaves a 6-line stream after one line: GeneratorExit, or the
    generator runs to its end; and whether the response's close() is called."""
    measured, committed = server
    assert (measured["closed_how"], measured["response_closed"]) == (
        committed["closed_how"],
        committed["response_closed"],
    )
    if measured["closed_how"] == "completed":
        assert measured["raw_closed_sent"] == 6


def test_fast_stream_client_gone(server):
    """Three clients leave a stream that never pauses: closed within
    FAST_WINDOW_S, or still running. waitress's default is a race
    (test_waitress_swallows_a_failed_write_to_a_client_that_left)."""
    measured, committed = server
    assert measured["raw_fast_served"] == committed["raw_fast_served"]
    if committed["fast_race"]:
        assert measured["fast"] in ("closed", "still running")
    else:
        assert measured["fast"] == committed["fast"]


def test_stream_longer_than_timeout(server):
    """gunicorn sync and uWSGI's harakiri cut a stream longer than their
    timeout; the others finish it. Cut off mid-silence, not at once."""
    measured, committed = server
    assert (measured["long_stream"], measured["long_stream_looks_complete"]) == (
        committed["long_stream"],
        committed["long_stream_looks_complete"],
    )
    if measured["long_stream"] == "cut off":
        assert measured["raw_long_stream_lines"] == 1
        assert TIMEOUT_S - 1 <= measured["raw_long_stream_s"] < LONG_INTERVAL_MS / 1000


def test_slow_streams_served_at_once(server):
    measured, committed = server
    assert measured["tried"] == committed["tried"]
    if SERVERS[measured["key"]]["cpu_bound_threads"]:
        # asyncio's default executor: min(32, CPUs + 4) threads
        assert measured["concurrent"] == min(32, measured["cpus"] + 4)
        assert committed["concurrent"] == min(32, committed["cpus"] + 4)
    else:
        assert measured["concurrent"] == committed["concurrent"]


def test_keeps_connection_after_stream(server):
    measured, committed = server
    assert measured["keepalive"] == committed["keepalive"]


def test_whole_row_matches(server):
    """Belt and braces: the rendered row is the committed row (the heartbeat
    cell within one heartbeat, above; a CPU-sized pool on another machine)."""
    measured, committed = server
    now, then = cells(measured), cells(committed)
    skip = {NOTICED}
    if measured["cpus"] != committed["cpus"]:
        skip.add(AT_ONCE)
    assert [c for n, c in enumerate(now) if n not in skip] == [
        c for n, c in enumerate(then) if n not in skip
    ]


# -- waitress and fast streams (issue 10) --------------------------------------

SMALL_BUFFER = 262_144  # --outbuf-high-watermark (waitress's default: 16 MiB)


def test_waitress_swallows_a_failed_write_to_a_client_that_left():
    """Why waitress's default is a race: its app thread writes with
    ``send(..., do_close=False)``, which returns 0 on EPIPE or ECONNRESET
    instead of raising, so the generator is not told. Only the I/O thread's
    own write closes the channel, and it must first win the output lock."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server_side, _ = listener.accept()
        channel = wasyncore.dispatcher(server_side, map={})
        # RST, as a client that closes with unread data sends
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        sent = [channel.send(b"x" * 65536, do_close=False) for _ in range(3)]
        assert sent == [0, 0, 0]  # no exception, nothing sent
        channel.close()


@pytest.mark.parametrize("batch", [1000])
def test_waitress_small_buffer_and_big_yields_close_fast_streams(batch):
    """The pattern that holds: a small --outbuf-high-watermark makes the app
    thread stop and wait for the I/O thread after 256 KiB, which then finds
    the dead socket; yielding 1000 lines (64 KB) at a time reaches it at once.
    Three clients leave: every generator is closed within 2 s."""
    args = ("--threads=4", f"--outbuf-high-watermark={SMALL_BUFFER}")
    with waitress(TARGET, args=args) as url:
        probes = [uuid.uuid4().hex for _ in range(3)]
        for probe in probes:
            path = f"/fast?lines=10000000&batch={batch}&id={probe}"
            with RawStream(url, path) as stream:
                next(stream.lines())
        time.sleep(2)  # no requests meanwhile: a quiet server
        ended = [get_json(f"{url}/ended?id={probe}") for probe in probes]
        stats = get_json(f"{url}/stats")
    assert [ending["how"] for ending in ended] == ["GeneratorExit"] * 3
    assert stats["open_streams"] == 0
