"""Fixtures shared by the tests in tests/ (the Sybil config is the root one)."""

import contextlib

import pytest

from tests.servers import werkzeug_server


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
