"""The demo screenshots on the SSE, tokens and MJPEG pages: taken again in
Chromium on every run (a demo that stops working fails here), the committed
ones match what ``make screenshots`` makes, and each is on its page."""

from pathlib import Path

import pytest
from PIL import Image

from tests.demo_screenshots import DEMOS, OUT, VIEWPORT, take

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = {"sse": "formats/sse.rst", "tokens": "formats/tokens.rst",
         "mjpeg": "formats/mjpeg.rst"}  # fmt: skip


@pytest.mark.parametrize("name", list(DEMOS))
def test_demo_renders_and_its_screenshot_is_on_its_page(browser, tmp_path, name):
    fresh = Image.open(take(browser, name, tmp_path))
    committed = Image.open(OUT / f"{name}.png")
    size = (VIEWPORT["width"], VIEWPORT["height"])
    assert fresh.size == committed.size == size
    # Not a blank page: the demo drew something.
    assert len(set(fresh.convert("L").getdata())) > 8
    assert f"/_static/demos/{name}.png" in (DOCS / PAGES[name]).read_text()
