"""The server table on deploy/servers, measured again: every cell must equal
the committed docs/deploy/_data/servers.json (regenerate it with
``python -m tests.deploy_matrix`` when a server really changed)."""

import json

import pytest

from tests.deploy_matrix import (
    DATA,
    LONG_INTERVAL_MS,
    SERVERS,
    TIMEOUT_S,
    cells,
    measure,
    to_csv,
)

pytestmark = pytest.mark.live

COMMITTED = {row["key"]: row for row in json.loads((DATA / "servers.json").read_text())}


@pytest.fixture(scope="module", params=list(SERVERS))
def server(request):
    """(measured now, committed) for one server; measured once per module."""
    return measure(request.param), COMMITTED[request.param]


def test_every_server_is_in_the_committed_table():
    assert list(COMMITTED) == list(SERVERS)


def test_committed_csv_is_rendered_from_committed_json():
    assert (DATA / "servers.csv").read_text() == to_csv(COMMITTED.values())


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
    client hung up (heartbeat every HEARTBEAT_MS ms)."""
    measured, committed = server
    assert measured["disconnect_how"] == committed["disconnect_how"] == "GeneratorExit"
    assert measured["disconnect_heartbeats"] == committed["disconnect_heartbeats"]


def test_stream_longer_than_timeout(server):
    """gunicorn sync kills a stream longer than --timeout; the others finish."""
    measured, committed = server
    assert measured["long_stream"] == committed["long_stream"]
    if measured["long_stream"] == "cut off":  # killed mid-silence, not at once
        assert measured["raw_long_stream_lines"] == 1
        assert TIMEOUT_S <= measured["raw_long_stream_s"] < LONG_INTERVAL_MS / 1000


def test_slow_streams_served_at_once(server):
    measured, committed = server
    assert (measured["concurrent"], measured["tried"]) == (
        committed["concurrent"],
        committed["tried"],
    )


def test_keeps_connection_after_stream(server):
    measured, committed = server
    assert measured["keepalive"] == committed["keepalive"]


def test_whole_row_matches(server):
    """Belt and braces: the rendered row is the committed row."""
    measured, committed = server
    assert cells(measured) == cells(committed)
