"""A real Chromium against snippets/sse_auth_tickets.py: a fetch-based client
(@microsoft/fetch-event-source 2.0.1, vendored) that sends Authorization and
resumes after a drop, and EventSource with a single-use ticket behind nginx,
whose access log never sees the long-lived token."""

import sys
import tempfile
from pathlib import Path

import pytest

from snippets import sse_auth_tickets as tickets_app
from tests.servers import free_port, nginx, process_server, read_log, wait_until

pytestmark = pytest.mark.browser

TOKEN = "long-lived-api-token-0123456789"


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setattr(tickets_app, "TICK_SECONDS", 0.1)
    monkeypatch.setitem(tickets_app.tokens, TOKEN, "ada")
    return TOKEN


def dropping(app, seen, *, after):
    """Note each stream request's Authorization and Last-Event-ID; cut every
    stream after `after` events, without the closing chunk, as a dropped
    connection does."""

    def wsgi(environ, start_response):
        if environ["PATH_INFO"] != "/events/bearer":
            return app(environ, start_response)
        seen.append(
            (environ.get("HTTP_AUTHORIZATION"), environ.get("HTTP_LAST_EVENT_ID"))
        )
        body = app(environ, start_response)

        def cut():
            try:
                for n, chunk in enumerate(body, 1):
                    yield chunk
                    if n == after:
                        raise ConnectionAbortedError("dropped by the test")
            finally:
                body.close()

        return cut()

    return wsgi


def test_fetch_client_sends_authorization_and_resumes_after_a_drop(
    page, live_server, token
):
    """fetch-event-source sends the token in Authorization; each stream is
    cut after 3 events; the client reconnects with Last-Event-ID and the page
    gets events 1 to 9 in order: none lost, none twice."""
    seen = []
    url = live_server(dropping(tickets_app.app, seen, after=3))
    page.goto(f"{url}/")
    page.evaluate(f"window.startStream({token!r})")
    page.wait_for_function(
        "document.querySelectorAll('#events li').length >= 9", timeout=30_000
    )
    items = page.locator("#events li").all_inner_texts()[:9]
    assert items == [f"{n}: ada #{n}" for n in range(1, 10)], (items, seen)
    assert seen[:3] == [(f"Bearer {token}", None), (f"Bearer {token}", "3"),
                        (f"Bearer {token}", "6")]  # fmt: skip


def test_fetch_client_stops_on_a_401(page, live_server, token):
    """A wrong token: the stream is a 401, the client does not retry."""
    seen = []
    url = live_server(dropping(tickets_app.app, seen, after=3))
    page.goto(f"{url}/")
    page.evaluate("window.startStream('not-a-token')")
    page.wait_for_function("window.streamError !== undefined", timeout=20_000)
    assert page.evaluate("window.streamError") == "Error: status 401"
    assert len(seen) == 1


TICKET_FLOW = """async (token) => {
  const reply = await fetch("/ticket", {
    method: "POST", headers: {Authorization: `Bearer ${token}`},
  });
  const {ticket} = await reply.json();
  const open = (url) => new Promise((resolve) => {
    const source = new EventSource(url);
    source.onmessage = (e) => { source.close(); resolve(e.data); };
    source.onerror = () => { source.close(); resolve("error"); };
  });
  const first = await open(`/events?ticket=${ticket}`);
  const again = await open(`/events?ticket=${ticket}`);
  return [first, again];
}"""


def test_ticket_opens_one_stream_and_nginx_never_logs_the_token(
    page, live_server, token
):
    """Through nginx: POST /ticket with the token in a header, then
    EventSource on /events?ticket=...: the first use streams, the second is
    refused; nginx's access log has the ticket's URL and never the token."""
    app_url = live_server(tickets_app.app)
    with tempfile.TemporaryDirectory() as logs:
        Path(logs).chmod(0o755)
        access_log = Path(logs) / "access.log"
        block = f"""
            access_log {access_log};
            location / {{
                proxy_pass {app_url};
                proxy_http_version 1.1;
            }}
        """
        with nginx(block) as url:
            page.goto(f"{url}/")
            assert page.evaluate(TICKET_FLOW, token) == ["ada #1", "error"]
            assert wait_until(lambda: access_log.read_text().count("/events?") == 2)
            log = access_log.read_text()
    assert "POST /ticket" in log
    assert '"GET /events?ticket=' in log
    assert token not in log


CROSS_ORIGIN_FETCH = """async ([url, token]) => {
  const reply = await fetch(url, {headers: {Authorization: `Bearer ${token}`}});
  const reader = reply.body.getReader();
  const {value} = await reader.read();
  await reader.cancel();
  return [reply.status, new TextDecoder().decode(value)];
}"""


def test_cross_origin_fetch_with_authorization_is_preflighted(page, live_server):
    """A page on another port fetches /events/bearer with Authorization:
    Chromium first sends OPTIONS; Flask-CORS allows the origin and the
    header; then the GET streams. gunicorn's access log shows both."""
    front = live_server(lambda environ, start: start("200 OK", []) or [b""])
    port = free_port()
    argv = [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
        "--worker-class", "gthread", "--threads", "4",
        "--access-logfile", "-", "snippets.sse_auth_tickets:app",
    ]  # fmt: skip
    env = {"FRONT_END_ORIGINS": front, "DEMO_PASSWORD": "pw"}
    with process_server(argv, port, env=env) as proc:
        stream = f"http://127.0.0.1:{port}"
        page.goto(f"{front}/")
        token = page.request.post(
            f"{stream}/token", form={"user": "ada", "password": "pw"}
        ).json()["token"]
        status, first = page.evaluate(
            CROSS_ORIGIN_FETCH, [f"{stream}/events/bearer", token]
        )
        assert (status, first) == (200, "id: 1\ndata: ada #1\n\n")
        assert wait_until(lambda: '"GET /events/bearer' in read_log(proc))
        log = read_log(proc)
    assert '"OPTIONS /events/bearer HTTP/1.1" 200' in log
    assert log.index('"OPTIONS /events/bearer') < log.index('"GET /events/bearer')
