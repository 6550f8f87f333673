"""A real Chromium against snippets/sse_auth.py: the session cookie on a
same-origin EventSource, a 401 without it, signing out, and cross-origin
streams with Flask-CORS (two origins: two ports, and localhost)."""

import sys

import pytest

from snippets import sse_auth
from tests.servers import free_port, process_server, read_log

pytestmark = pytest.mark.browser

PASSWORD = "correct horse"
BLANK = b"<!doctype html><title>front end</title>"


def blank_site(environ, start_response):
    """Another origin: an empty page, nothing else."""
    start_response("200 OK", [("Content-Type", "text/html")])
    return [BLANK]


def recording(app, seen):
    """Serve a blank same-origin page at /blank; note every request's path
    and whether it carried a cookie."""

    def wsgi(environ, start_response):
        seen.append(
            (environ["REQUEST_METHOD"], environ["PATH_INFO"], "HTTP_COOKIE" in environ)
        )
        if environ["PATH_INFO"] == "/blank":
            return blank_site(environ, start_response)
        return app(environ, start_response)

    return wsgi


OPEN = """(url) => {
  window.got = []; window.errors = 0;
  window.source = new EventSource(url, %s);
  window.source.onmessage = (e) => window.got.push(e.data);
  window.source.onerror = () => { window.errors += 1; };
}"""


def open_stream(page, url, *, credentials=False):
    flag = "{withCredentials: true}" if credentials else "{}"
    page.evaluate(OPEN % flag, url)


@pytest.fixture
def signed_in_app(monkeypatch):
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
    monkeypatch.setattr(sse_auth, "TICK_SECONDS", 0.2)


def sign_in(page, url, user="ada"):
    reply = page.request.post(f"{url}/login", form={"user": user, "password": PASSWORD})
    assert reply.status == 200


def test_same_origin_eventsource_sends_the_session_cookie(
    page, live_server, signed_in_app
):
    """Signed in, `new EventSource("/events")` carries the session cookie and
    gets the user's events."""
    seen = []
    url = live_server(recording(sse_auth.app, seen))
    page.goto(f"{url}/blank")
    sign_in(page, url)
    open_stream(page, "/events")
    page.wait_for_function("window.got.length >= 2", timeout=20_000)
    assert page.evaluate("window.got.slice(0, 2)") == ["ada #1", "ada #2"]
    assert ("GET", "/events", True) in seen


def test_stream_without_a_session_is_a_401_and_eventsource_gives_up(
    page, live_server, signed_in_app
):
    """Not signed in: the stream answers 401 before it starts; EventSource
    fires one error, closes for good and does not retry."""
    seen = []
    url = live_server(recording(sse_auth.app, seen))
    page.goto(f"{url}/blank")
    open_stream(page, "/events")
    page.wait_for_function("window.source.readyState === 2", timeout=20_000)
    assert page.evaluate("[window.got.length, window.errors]") == [0, 1]
    assert [s for s in seen if s[1] == "/events"] == [("GET", "/events", False)]


def test_signing_out_ends_the_open_stream_within_one_tick(
    page, live_server, signed_in_app
):
    """POST /logout from the same page: the open stream ends at its next
    write (one tick: at most one event arrives after /logout answered),
    EventSource reconnects, gets a 401, and stays closed."""
    url = live_server(sse_auth.app)
    page.goto(f"{url}/")
    sign_in(page, url)
    open_stream(page, "/events")
    page.wait_for_function("window.got.length >= 1", timeout=20_000)
    before = page.evaluate(
        """async () => {
          window.source.addEventListener("error", () => {
            window.atEnd ??= window.got.length;
          });
          await fetch("/logout", {method: "POST"});
          return window.got.length;
        }"""
    )
    page.wait_for_function("window.source.readyState === 2", timeout=20_000)
    # At most the one event that was on its way while /logout ran.
    assert page.evaluate("window.atEnd") - before <= 1
    # Two errors: the stream ended (EventSource reconnects), then the 401.
    assert page.evaluate("window.errors") == 2


# -- cross-origin: the stream on one port, the page on another -----------------


@pytest.fixture
def two_origins(live_server):
    """The page's origin (a second port, or localhost) and the stream's
    server: gunicorn gthread running snippets.sse_auth with that origin in
    FRONT_END_ORIGINS."""

    def start(front_host="127.0.0.1"):
        front = live_server(blank_site).replace("127.0.0.1", front_host)
        port = free_port()
        argv = [
            sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
            "--worker-class", "gthread", "--threads", "4",
            "--access-logfile", "-", "snippets.sse_auth:app",
        ]  # fmt: skip
        env = {
            "FRONT_END_ORIGINS": front,
            "DEMO_PASSWORD": PASSWORD,
        }
        return front, argv, port, env

    return start


def stream_cookies(page):
    """The Cookie header of each /events request Chromium sends (None: none)."""
    cookies = []
    page.on(
        "request",
        lambda r: cookies.append(r.header_value("cookie")) if "/events" in r.url else 0,
    )
    return cookies


def console(page):
    messages = []
    page.on("console", lambda message: messages.append(message.text))
    return messages


def test_cross_origin_stream_with_credentials_and_an_exact_origin(page, two_origins):
    """Page on 127.0.0.1:A, stream on 127.0.0.1:B (another origin, the same
    site): with `withCredentials: true` Chromium sends the cookie, and
    Flask-CORS answers with the exact origin and Allow-Credentials, so the
    events arrive; there is no preflight."""
    front, argv, port, env = two_origins()
    cookies = stream_cookies(page)
    with process_server(argv, port, env=env) as proc:
        stream = f"http://127.0.0.1:{port}"
        page.goto(f"{front}/")
        sign_in(page, stream)
        headers = {}
        page.on(
            "response",
            lambda r: headers.update(r.headers) if "/events" in r.url else None,
        )
        open_stream(page, f"{stream}/events", credentials=True)
        page.wait_for_function("window.got.length >= 1", timeout=20_000)
        assert page.evaluate("window.got[0]") == "ada #1"
        assert headers["access-control-allow-origin"] == front
        assert headers["access-control-allow-credentials"] == "true"
        log = read_log(proc)
    assert cookies[0].startswith("session=")
    # A preflight would have ended (and been logged) before the events came.
    assert '"POST /login HTTP/1.1" 200' in log
    assert "OPTIONS" not in log


def test_cross_origin_stream_without_with_credentials_sends_no_cookie(
    page, two_origins
):
    """The same pair of origins without `withCredentials`: no cookie goes, the
    stream answers 401, EventSource closes."""
    front, argv, port, env = two_origins()
    cookies = stream_cookies(page)
    with process_server(argv, port, env=env):
        stream = f"http://127.0.0.1:{port}"
        page.goto(f"{front}/")
        sign_in(page, stream)
        open_stream(page, f"{stream}/events")
        page.wait_for_function("window.source.readyState === 2", timeout=20_000)
        assert page.evaluate("window.got.length") == 0
    assert cookies == [None]


def test_cross_origin_stream_from_an_origin_not_listed_is_blocked(page, two_origins):
    """An origin that is not in FRONT_END_ORIGINS gets no CORS headers:
    Chromium blocks the response and says why in the console."""
    front, argv, port, env = two_origins()
    env["FRONT_END_ORIGINS"] = "https://app.example.com"
    messages = console(page)
    with process_server(argv, port, env=env):
        stream = f"http://127.0.0.1:{port}"
        page.goto(f"{front}/")
        sign_in(page, stream)
        open_stream(page, f"{stream}/events", credentials=True)
        page.wait_for_function("window.source.readyState === 2", timeout=20_000)
        assert page.evaluate("window.got.length") == 0
    assert any("No 'Access-Control-Allow-Origin' header" in m for m in messages)


def test_wildcard_origin_with_credentials_is_refused(page, live_server):
    """`Access-Control-Allow-Origin: *` with `withCredentials`: the server
    answers 200 with events, and Chromium refuses to hand them to the page."""
    seen = []

    def wildcard(environ, start_response):
        seen.append("HTTP_COOKIE" in environ)
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/event-stream"),
                ("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Allow-Credentials", "true"),
            ],
        )
        return [b"data: secret\n\n"]

    front = live_server(blank_site)
    stream = live_server(wildcard)
    messages = console(page)
    page.goto(f"{front}/")
    open_stream(page, f"{stream}/events", credentials=True)
    page.wait_for_function("window.source.readyState === 2", timeout=20_000)
    assert page.evaluate("window.got.length") == 0
    assert len(seen) == 1  # the server answered; the browser refused it
    assert any("must not be the wildcard '*'" in m for m in messages)


def test_cross_site_page_gets_no_default_session_cookie(page, two_origins):
    """Page on localhost:A, stream on 127.0.0.1:B: another site. Flask's
    session cookie has no SameSite attribute, Chromium treats it as Lax and
    does not send it on the EventSource request, even with credentials: the
    stream answers 401."""
    front, argv, port, env = two_origins("localhost")
    cookies = stream_cookies(page)
    with process_server(argv, port, env=env):
        stream = f"http://127.0.0.1:{port}"
        page.goto(f"{front}/")
        sign_in(page, stream)
        open_stream(page, f"{stream}/events", credentials=True)
        page.wait_for_function("window.source.readyState === 2", timeout=20_000)
        assert page.evaluate("window.got.length") == 0
    assert cookies == [None]
