"""snippets/lifetime.py in-process: what a generator abandoned without
close() leaves on the thread that ran it, reproduced with the test client on
this thread (a server that reuses the thread would see the same)."""

import threading

from snippets import lifetime
from snippets.lifetime import TEARDOWNS, app


def abandon_after_two_lines(client, path):
    """Start a stream on this thread, take two lines, and drop it unclosed
    (kept referenced, as a server that abandons it does)."""
    response = client.get(path, buffered=False)
    lines = iter(response.response)
    return response, [next(lines), next(lines)]


def test_an_abandoned_stream_with_context_generator_leaks_into_the_next_request():
    """pallets/flask#6123 on Flask 3.1.3: the abandoned generator's contexts
    stay pushed on the thread, so the next request reuses its app context:
    it sees the old ``g``, its own teardown_appcontext does not run, and the
    generator's connection stays checked out."""
    client = app.test_client()
    kept = abandon_after_two_lines(client, "/leaky")
    before = len(TEARDOWNS)
    state = client.get("/state").json
    assert state["stale_g"] == "the streaming request"
    assert state["checked_out"] == 1
    assert len(TEARDOWNS) == before  # the /state request's teardown: skipped
    kept[0].close()  # what a server that closes it does: all is cleaned up
    state = client.get("/state").json
    assert (state["stale_g"], state["checked_out"]) == (None, 0)


def test_an_abandoned_ticks_generator_leaves_nothing_behind():
    client = app.test_client()
    kept = abandon_after_two_lines(client, "/ticks")
    assert kept[1] == [b"0 1\n", b"1 1\n"]
    before = len(TEARDOWNS)
    state = client.get("/state").json
    assert (state["stale_g"], state["checked_out"]) == (None, 0)
    assert len(TEARDOWNS) == before + 1  # this request's own teardown ran
    assert TEARDOWNS[-1] == threading.get_ident()
    kept[0].close()


def test_ticks_ends_on_its_own_at_the_deadline(monkeypatch):
    monkeypatch.setattr(lifetime, "MAX_SECONDS", 0.2)
    lines = app.test_client().get("/ticks").get_data(as_text=True).splitlines()
    assert lines[0] == "0 1" and len(lines) <= 0.2 / lifetime.INTERVAL + 2
