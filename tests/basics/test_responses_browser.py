"""The browser tier itself works: Chromium renders a streamed page."""

import pytest

from snippets.responses import app

pytestmark = pytest.mark.browser


def test_chromium_renders_a_streamed_response(page, live_server):
    url = live_server(app)
    page.goto(f"{url}/count?n=3")
    assert page.inner_text("body") == "line 1\nline 2\nline 3\n"
