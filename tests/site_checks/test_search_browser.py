"""The site's own search (Sphinx's, in Chromium) ranks the page that answers
a reader's question first. Each page names the words its readers search for
in a main index entry (``.. index:: ! Last-Event-ID``), which Sphinx's search
ranks above any page that only mentions them."""

from __future__ import annotations

import pytest

from tests.site_checks.test_built_site_browser import site  # noqa: F401  fixture

pytestmark = [pytest.mark.browser, pytest.mark.no_cover]

# A reader's query -> the page that answers it.
QUERIES = {
    "Last-Event-ID": "formats/sse",
    "server-sent events": "formats/sse",
    "nginx buffering": "deploy/proxies",
    "X-Accel-Buffering": "deploy/proxies",
    "gunicorn timeout": "deploy/servers",
    "session": "state/sessions",
    "disconnect": "state/lifecycle",
    "celery": "extensions/celery",
    "upload": "files/uploads",
    "range": "files/downloads",
    "send_file": "files/downloads",
    "async": "async/views",
    "uvicorn": "async/asgi_servers",
    "quart": "async/quart",
    "csv export": "basics/csv_export",
    "stream_with_context": "basics/request_context",
    "stream_template": "basics/templates",
    "ndjson": "formats/ndjson",
    "zip": "formats/zip",
    "mjpeg": "formats/mjpeg",
    "excel": "formats/spreadsheets",
    "uwsgi": "deploy/uwsgi",
    "sigterm": "deploy/restarts",
    "yield_per": "formats/database",
    "flask-login": "extensions/flask_login",
    "error mid-stream": "state/errors",
    "htmx": "formats/htmx",
    "heartbeat": "deploy/hosting",
}


@pytest.fixture(scope="module")
def search_tab(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def first_result(tab, site_url, query):
    """The page of the first result, or None: the search has finished when
    its summary says so, found or not (results are listed best first)."""
    tab.goto(f"{site_url}/search.html?q={query}", wait_until="domcontentloaded")
    tab.wait_for_function(
        "/Search finished|did not match/.test("
        "document.querySelector('#search-results .search-summary')?.textContent)",
        timeout=60_000,
    )
    first = tab.query_selector("#search-results ul.search li a")
    if first is None:
        return None
    href = first.get_attribute("href") or ""
    return href.split("#", 1)[0].removesuffix(".html").lstrip("./")


def test_the_answering_page_ranks_first(site, search_tab):  # noqa: F811
    ranks = {query: first_result(search_tab, site, query) for query in QUERIES}
    wrong = {q: got for q, got in ranks.items() if got != QUERIES[q]}
    assert not wrong, wrong
