"""snippets/hosting.py's recipe in process: first byte, heartbeats, result."""

from snippets import hosting


def test_report_sends_a_first_byte_heartbeats_then_the_result(monkeypatch):
    monkeypatch.setattr(hosting, "WORK_SECONDS", 0.3)
    monkeypatch.setattr(hosting, "HEARTBEAT_SECONDS", 0.05)
    body = iter(hosting.app.test_client().get("/report").response)
    assert next(body) == b": started\n\n"
    *beats, last = list(body)
    assert beats and set(beats) == {b": keep-alive\n\n"}
    assert last == b'event: result\ndata: {"answer": 42, "took": 0.3}\n\n'
