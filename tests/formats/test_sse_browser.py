"""A real Chromium against snippets/sse.py: named events, reconnection with
Last-Event-ID, and the six-connections-per-origin limit of HTTP/1.1."""

import time

import pytest

from snippets.sse import RETRY_MS
from snippets.sse import app as sse_app

pytestmark = pytest.mark.browser

BLANK = b"<!doctype html><title>blank</title>"


def recording(app, seen):
    """Wrap the app: note each /events request (its query and Last-Event-ID),
    serve an empty same-origin page at /blank, and a 204 at /gone."""

    def wsgi(environ, start_response):
        if environ["PATH_INFO"] == "/blank":
            start_response("200 OK", [("Content-Type", "text/html")])
            return [BLANK]
        if environ["PATH_INFO"] == "/gone":
            seen.append(("gone", None))
            start_response("204 No Content", [])
            return []
        if environ["PATH_INFO"] == "/events":
            seen.append(
                (environ.get("QUERY_STRING"), environ.get("HTTP_LAST_EVENT_ID"))
            )
        return app(environ, start_response)

    return wsgi


def test_eventsource_reconnects_with_last_event_id(page, live_server):
    """The server closes the stream after 5 events; EventSource waits `retry`
    ms, reconnects on its own and sends Last-Event-ID: 5; the count goes on
    from 6 with no gap and no repeat."""
    seen = []
    url = live_server(recording(sse_app, seen))
    page.goto(f"{url}/")
    page.wait_for_function(
        "document.querySelectorAll('#ticks li').length >= 8", timeout=20_000
    )
    items = page.locator("#ticks li").all_inner_texts()[:8]
    assert items == [f"#{n}: tick {n}" for n in range(1, 9)]
    assert seen[:2] == [("limit=5&every=300", None), ("limit=5&every=300", "5")]
    assert int(page.inner_text("#opens")) >= 2
    assert RETRY_MS == 1000


def test_named_events_never_reach_onmessage(page, live_server):
    """`event: tick` is delivered to addEventListener("tick") only; the
    page's onmessage counter stays at zero, heartbeats and retry lines
    included."""
    url = live_server(sse_app)
    page.goto(f"{url}/")
    page.wait_for_function(
        "document.querySelectorAll('#ticks li').length >= 6", timeout=20_000
    )
    assert page.inner_text("#messages") == "0"


def test_seventh_eventsource_waits_for_a_free_connection(page, live_server):
    """HTTP/1.1: Chromium opens at most six connections per origin. With six
    EventSources open the seventh is not even sent to the server; closing
    one lets it through."""
    seen = []
    url = live_server(recording(sse_app, seen))
    page.goto(f"{url}/blank")
    page.evaluate(
        """() => {
          window.opened = [];
          window.sources = [...Array(7).keys()].map((i) => {
            const source = new EventSource(`/events?every=500&c=${i}`);
            source.onopen = () => window.opened.push(i);
            return source;
          });
        }"""
    )
    page.wait_for_function("window.opened.length === 6", timeout=20_000)
    # Not returned to evaluate(): Playwright would wait for the promise.
    page.evaluate(
        "() => { window.fetched = false;"
        " fetch('/blank').then(() => { window.fetched = true; }); }"
    )
    # A bounded wait to show a negative: streams keep flowing meanwhile.
    time.sleep(2)
    assert len(seen) == 6
    assert page.evaluate("window.opened.length") == 6
    assert page.evaluate("window.fetched") is False
    waiting = page.evaluate("window.sources.findIndex((s) => s.readyState === 0)")
    assert page.evaluate(f"window.sources[{waiting}].readyState") == 0  # CONNECTING

    # The seventh stream was queued first: it takes the first free connection.
    page.evaluate("window.sources[window.opened[0]].close()")
    page.wait_for_function(f"window.opened.includes({waiting})", timeout=20_000)
    assert len(seen) == 7
    assert page.evaluate("window.fetched") is False
    page.evaluate("window.sources[window.opened[1]].close()")
    page.wait_for_function("window.fetched", timeout=20_000)
    assert sorted(query for query, _ in seen) == [f"every=500&c={i}" for i in range(7)]


@pytest.mark.parametrize(("path", "status"), [("/events?limit=0", 400), ("/gone", 204)])
def test_eventsource_gives_up_after_a_non_200(page, live_server, path, status):
    """A 400 or a 204 closes the EventSource for good: readyState CLOSED, and
    no second request during several retry periods."""
    seen = []
    url = live_server(recording(sse_app, seen))
    page.goto(f"{url}/blank")
    page.evaluate(
        f"""() => {{
          window.source = new EventSource("{path}");
          window.source.onerror = () => {{ window.failed = true; }};
        }}"""
    )
    page.wait_for_function("window.failed === true", timeout=20_000)
    assert page.evaluate("window.source.readyState") == 2  # CLOSED
    time.sleep(3 * RETRY_MS / 1000)  # a bounded wait: longer than 3 retries
    assert len(seen) == 1
    assert page.evaluate("window.source.readyState") == 2
