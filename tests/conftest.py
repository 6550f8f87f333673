"""Fixtures shared by the tests in tests/ (the Sybil config is the root one).

``browser`` and ``page`` drive Debian's Chromium through Playwright (no
browser download: the system one). On a developer's machine without
chromium the browser tests skip with a reason; in CI (FSP_STRICT=1) they fail.
"""

import contextlib

import pytest

from tests import tiers
from tests.servers import SKIPPED_TIERS, STRICT, require_binary, werkzeug_server


# pytest-cov's ``no_cover`` mark pauses coverage for a test's call only; here
# it pauses the test's setup and teardown too, where a module's fixtures do
# their work (the bench's measurements, a site walk's server). Coverage's
# tracer costs CPU on every Python call, measured or not: the modules marked
# run no snippet code that the rest of the suite does not reach, and the 100%
# gate proves it on every run.
@contextlib.contextmanager
def _coverage_paused(item):
    import coverage

    cov = coverage.Coverage.current() if item.get_closest_marker("no_cover") else None
    if cov is None:
        yield
        return
    cov.stop()
    try:
        yield
    finally:
        cov.start()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    with _coverage_paused(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    with _coverage_paused(item):
        return (yield)


class _NoCoverage:
    """What pytest-cov 7.1.0 pauses for a ``no_cover`` test when ``--no-cov``
    left it no controller (an AttributeError, pytest-dev/pytest-cov#590)."""

    def pause(self):
        pass

    def resume(self):
        pass


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    plugin = config.pluginmanager.get_plugin("_cov")
    if config.getoption("no_cov", False) and plugin.cov_controller is None:
        plugin.cov_controller = _NoCoverage()


@pytest.fixture
def live_server():
    """Serve any WSGI app with Werkzeug's server on 127.0.0.1.

    Call it with an app; it returns the base URL and stops the server at the
    end of the test::

        def test_x(live_server):
            url = live_server(app)
    """
    with contextlib.ExitStack() as stack:

        def start(app, *, threaded=True):
            return stack.enter_context(werkzeug_server(app, threaded=threaded))

        yield start


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# One Chromium per test module, not per session: Playwright's sync API runs an
# event loop in the main thread while it is open, and Flask's async views
# (asgiref's async_to_sync) refuse to run in a thread with a running loop, so
# a session-wide browser broke every async view tested after the first browser
# test (tests/site_checks/test_adversarial.py found it).
@pytest.fixture(scope="module")
def browser():
    executable = require_binary("chromium", "/usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def pytest_terminal_summary(terminalreporter):
    """One line per tier that skipped, with the command that enables it.
    Under pytest-xdist the tests ran in the workers, so the controller also
    asks tests/tiers.py which binaries are missing."""
    missing = set(SKIPPED_TIERS) | (set() if STRICT else set(tiers.missing()))
    for name in sorted(missing):
        terminalreporter.write_line(tiers.enable_line(name), yellow=True)
