"""A real Chromium through nginx with TLS, on HTTP/1.1 and on HTTP/2, in
front of gunicorn gthread serving snippets/sse.py: how many EventSources one
page can hold open to one origin. nginx runs docs/deploy/_conf/http2.nginx.conf
with only its port, certificate paths and upstream changed."""

import contextlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.servers import ROOT, free_port, gunicorn, nginx_http, require_binary

pytestmark = pytest.mark.browser

CONF = ROOT / "docs" / "deploy" / "_conf" / "http2.nginx.conf"


def make_certificate(folder):
    """A throwaway self-signed certificate for 127.0.0.1 (openssl)."""
    openssl = require_binary("openssl", "/usr/bin/openssl")
    crt, key = Path(folder) / "test.crt", Path(folder) / "test.key"
    argv = [
        openssl, "req", "-x509", "-newkey", "ec",
        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(crt), "-days", "1",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
    ]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True)
    return crt, key


@contextlib.contextmanager
def tls_front(upstream, *, http2=True, max_streams=None):
    """nginx with the page's config; yields its https:// URL."""
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        crt, key = make_certificate(tmp)
        port = free_port()
        conf = CONF.read_text()
        listen = f"listen 127.0.0.1:{port} ssl{' http2' if http2 else ''};"
        for old, new in [
            ("listen 443 ssl http2;", listen),
            ("/etc/ssl/example.com.crt", str(crt)),
            ("/etc/ssl/example.com.key", str(key)),
            ("http://127.0.0.1:8000", upstream),
        ] + (
            [("concurrent_streams 128;", f"concurrent_streams {max_streams};")]
            if max_streams
            else []
        ):
            assert old in conf
            conf = conf.replace(old, new)
        with nginx_http(conf, "return 404;"):
            yield f"https://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def upstream():
    """gunicorn gthread, enough threads for every stream these tests open."""
    with gunicorn(
        "snippets.sse:app", worker_class="gthread", args=("--threads", "200")
    ) as (url, _):
        yield url


@pytest.fixture
def tls_page(browser):
    context = browser.new_context(ignore_https_errors=True)  # the test's cert
    yield context.new_page()
    context.close()


OPEN = """(count) => {
  window.opened = 0;
  window.sources = [...Array(count).keys()].map((i) => {
    const source = new EventSource(`/events?every=10000&c=${i}`);
    source.onopen = () => { window.opened += 1; };
    return source;
  });
}"""

# The page's own protocol: an open EventSource has no timing entry yet.
PROTOCOL = """() => performance.getEntriesByType("navigation")[0].nextHopProtocol"""


def open_sources(page, url, count):
    page.goto(f"{url}/blank")  # a 404 page: any page of the origin will do
    page.evaluate(OPEN, count)


def stays(page, expected, seconds=2.0):
    """A bounded wait to show a negative: no more EventSource opens."""
    time.sleep(seconds)
    return page.evaluate("window.opened") == expected


def test_http1_over_tls_holds_six_eventsources_the_seventh_waits(tls_page, upstream):
    """nginx without http2: Chromium opens six connections to the origin;
    the seventh EventSource stays CONNECTING until one closes."""
    with tls_front(upstream, http2=False) as url:
        open_sources(tls_page, url, 7)
        tls_page.wait_for_function("window.opened === 6", timeout=30_000)
        assert stays(tls_page, 6)
        assert tls_page.evaluate(PROTOCOL) == "http/1.1"
        tls_page.evaluate("window.sources.find((s) => s.readyState === 1).close()")
        tls_page.wait_for_function("window.opened === 7", timeout=30_000)


def test_http2_holds_twenty_eventsources_at_once(tls_page, upstream):
    """The same nginx with http2: twenty EventSources open at once, all over
    h2 (one connection)."""
    with tls_front(upstream) as url:
        open_sources(tls_page, url, 20)
        tls_page.wait_for_function("window.opened === 20", timeout=30_000)
        assert tls_page.evaluate(PROTOCOL) == "h2"


def test_http2_stream_limit_is_nginx_max_concurrent_streams(tls_page, upstream):
    """nginx announces http2_max_concurrent_streams (128 by default):
    Chromium opens 128 EventSources and queues the rest on that connection
    instead of opening a second one; closing one lets the next in."""
    with tls_front(upstream) as url:
        open_sources(tls_page, url, 130)
        tls_page.wait_for_function("window.opened === 128", timeout=60_000)
        assert stays(tls_page, 128)
        tls_page.evaluate("window.sources.find((s) => s.readyState === 1).close()")
        tls_page.wait_for_function("window.opened === 129", timeout=30_000)
        assert stays(tls_page, 129)


def test_http2_limit_follows_the_setting(tls_page, upstream):
    """With http2_max_concurrent_streams 10, the eleventh EventSource waits."""
    with tls_front(upstream, max_streams=10) as url:
        open_sources(tls_page, url, 11)
        tls_page.wait_for_function("window.opened === 10", timeout=30_000)
        assert stays(tls_page, 10)
