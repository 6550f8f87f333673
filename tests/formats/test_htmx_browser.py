"""A real Chromium against snippets/htmx.py: htmx 2.0.11 with htmx-ext-sse
2.2.4, and htmx 4.0.1 with its hx-sse extension, both vendored."""

import threading

import pytest

from snippets import htmx
from tests.servers import wait_until

pytestmark = pytest.mark.browser

ATTACK = "<script>window.pwned=1</script><img src=x onerror='window.pwned=2'>"


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(htmx, "TICK_SECONDS", 0.2)
    monkeypatch.setattr(htmx, "notes", htmx.deque(["hello"], maxlen=100))


def watching(app, streams, *, cut_after=None):
    """Note each stream request, and when the server closes its body (the
    client left); cut a stream after `cut_after` chunks, as a drop does."""

    def wsgi(environ, start_response):
        if not environ["PATH_INFO"].startswith("/feed"):
            return app(environ, start_response)
        closed = threading.Event()
        streams.append(closed)
        body = app(environ, start_response)

        def relay():
            try:
                for n, chunk in enumerate(body, 1):
                    yield chunk
                    if n == cut_after:
                        raise ConnectionAbortedError("dropped by the test")
            finally:
                body.close()
                closed.set()

        return relay()

    return wsgi


@pytest.mark.parametrize("path", ["/", "/htmx4"], ids=["htmx2", "htmx4"])
def test_named_events_swap_their_own_elements(page, live_server, fast, path):
    """htmx 2: `sse-swap="count"` and `sse-swap="note"` each take their own
    event; htmx 4: one unnamed message places both fragments by id
    (hx-swap-oob)."""
    url = live_server(htmx.app)
    page.goto(f"{url}{path}")
    page.wait_for_function(
        "Number(document.querySelector('#count b')?.textContent) >= 2"
        " && document.querySelector('#note i') !== null",
        timeout=20_000,
    )
    assert page.inner_html("#note") == "<i>hello</i>"
    assert page.inner_html("#count").startswith("<b>")
    assert page.inner_text("#note") == "hello"


@pytest.mark.parametrize("path", ["/", "/htmx4"], ids=["htmx2", "htmx4"])
def test_html_in_data_is_escaped_and_never_runs(page, live_server, fast, path):
    """A note with a <script> and an onerror handler arrives as text: it
    shows literally, and neither runs."""
    url = live_server(htmx.app)
    page.goto(f"{url}{path}")
    page.request.post(f"{url}/notes", form={"text": ATTACK})
    page.wait_for_function(
        f"document.querySelector('#note').textContent.includes({ATTACK[:8]!r})",
        timeout=20_000,
    )
    assert page.inner_text("#note") == ATTACK
    assert page.evaluate("window.pwned") is None


@pytest.mark.parametrize("path", ["/", "/htmx4"], ids=["htmx2", "htmx4"])
def test_view_reconnects_after_the_server_drops(page, live_server, fast, path):
    """Every stream is cut after 4 chunks: the page opens a new stream on its
    own, and the count goes on updating."""
    streams = []
    url = live_server(watching(htmx.app, streams, cut_after=4))
    page.goto(f"{url}{path}")
    assert wait_until(lambda: len(streams) >= 3, 30)
    page.wait_for_function(
        "Number(document.querySelector('#count b')?.textContent) >= 1",
        timeout=20_000,
    )


@pytest.mark.parametrize("path", ["/", "/htmx4"], ids=["htmx2", "htmx4"])
def test_removing_the_element_ends_the_stream_on_the_server(
    page, live_server, fast, path
):
    """Removing the connected element from the page: the browser drops the stream,
    the server's next write fails and the body is closed; no new stream
    opens."""
    streams = []
    url = live_server(watching(htmx.app, streams))
    page.goto(f"{url}{path}")
    page.wait_for_function(
        "Number(document.querySelector('#count b')?.textContent) >= 1",
        timeout=20_000,
    )
    page.evaluate("document.getElementById('live').remove()")
    assert streams[0].wait(20)
    assert len(streams) == 1


def test_htmx4_streams_the_answer_to_a_post(page, live_server, fast):
    """htmx 4: a form's hx-post whose response is text/event-stream; each
    message replaces #answer, the last one stays."""
    url = live_server(htmx.app)
    page.goto(f"{url}/htmx4")
    page.fill("input[name=question]", "<b>why</b>?")
    page.click("text=Ask")
    page.wait_for_function(
        "document.querySelector('#answer').textContent.endsWith('word word word')",
        timeout=20_000,
    )
    assert page.inner_text("#answer") == "You asked: <b>why</b>?. word word word"
