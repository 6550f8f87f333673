"""A rolling restart under a live stream, in Chromium: gunicorn reloads
(SIGHUP) while snippets/restarts.py streams ticks to its demo page.
The old worker sends "bye" and ends the stream; EventSource reconnects with
Last-Event-ID to the new worker, which sends every tick after that one."""

import signal

import pytest

from tests.servers import gunicorn

pytestmark = [pytest.mark.browser, pytest.mark.live]

TARGET = "snippets.restarts:app"
HOOK = ("-c", "python:snippets.restarts")
WORKERS = {"sync": (), "gthread": ("--threads", "4"), "gevent": ()}


def lost_and_duplicated(ids):
    """Events missing between the first and the last id seen, and repeats."""
    unique = set(ids)
    return (max(ids) - min(ids) + 1) - len(unique), len(ids) - len(unique)


def test_lost_and_duplicated_counts():
    assert lost_and_duplicated([4, 5, 7, 7, 8]) == (1, 1)


@pytest.mark.parametrize("worker", list(WORKERS))
def test_rolling_restart_loses_and_duplicates_nothing(page, monkeypatch, worker):
    monkeypatch.setenv("GRACEFUL_TICK_MS", "100")
    args = (*HOOK, *WORKERS[worker], "--graceful-timeout", "10")
    with gunicorn(TARGET, worker_class=worker, args=args) as (url, proc):
        page.goto(f"{url}/")
        page.wait_for_function("window.seen.length >= 10", timeout=20_000)
        old_pid = page.inner_text("#pid")
        before = page.evaluate("window.seen.length")
        proc.send_signal(signal.SIGHUP)  # reload: new worker, old one stops
        # Checkpoints: the old worker said bye, a new worker is streaming,
        # and ten more ticks arrived from it. (A reconnect can reach the old
        # worker while it still accepts: it says bye again, and the next one
        # reaches the new worker.)
        page.wait_for_function(
            f"""window.byes >= 1
                && document.getElementById("pid").value !== "{old_pid}"
                && window.seen.length >= {before} + 10""",
            timeout=20_000,
        )
        ids = page.evaluate("window.seen")
        opens = int(page.inner_text("#opens"))
        byes = page.evaluate("window.byes")
    lost, duplicated = lost_and_duplicated(ids)
    print(
        f"{worker}: {len(ids)} events over {opens} connections ({byes} bye),"
        f" lost {lost}, duplicated {duplicated}"
    )
    assert (lost, duplicated) == (0, 0)
    assert opens == byes + 1
