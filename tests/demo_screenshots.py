"""Screenshots of the demo pages (SSE, tokens, MJPEG) as a reader sees them
in Chromium, for the docs pages that show them.

    make screenshots            # python -m tests.demo_screenshots docs/_static/demos

Each demo runs on Werkzeug's threaded server on 127.0.0.1, is driven until it
has something to show (eight events, a whole answer, a decoded frame), and is
saved as a PNG. tests/site_checks/test_demo_screenshots_browser.py takes them
again on every run, so a demo that stops working fails the build, and checks
that the committed ones are the size this script makes and are on their page.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "_static" / "demos"
# The PNG's size in pixels. The page is laid out at half of it (360 x 280 CSS
# pixels, a phone's width) and drawn at device scale 2, so shown 360 px wide
# its text is the page's own size, and sharp on a high-density screen.
VIEWPORT = {"width": 720, "height": 560}
SCALE = 2


def sse(page, url):
    page.goto(f"{url}/")
    page.wait_for_function(
        "document.querySelectorAll('#ticks li').length >= 8", timeout=30_000
    )


def tokens(page, url):
    page.goto(f"{url}/")
    page.click("text=Ask (fetch)")
    page.wait_for_function(
        "document.getElementById('status').value === 'done'", timeout=30_000
    )


def mjpeg(page, url):
    page.goto(f"{url}/?fps=10")
    page.wait_for_function(
        "document.getElementById('video').naturalWidth === 320", timeout=30_000
    )
    page.wait_for_timeout(500)  # a few frames in, so the counter has moved


DEMOS = {
    "sse": ("snippets.sse", sse),
    "tokens": ("snippets.tokens", tokens),
    "mjpeg": ("snippets.mjpeg", mjpeg),
}


def take(browser, name: str, out_dir: Path) -> Path:
    """Serve the demo, drive it, save ``out_dir/<name>.png``; return its path."""
    import importlib

    from tests.servers import werkzeug_server

    module, drive = DEMOS[name]
    app = importlib.import_module(module).app
    layout = {side: size // SCALE for side, size in VIEWPORT.items()}
    context = browser.new_context(viewport=layout, device_scale_factor=SCALE)
    try:
        page = context.new_page()
        with werkzeug_server(app) as url:
            drive(page, url)
            path = out_dir / f"{name}.png"
            out_dir.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path))
            page.goto("about:blank")  # close the stream before the server stops
    finally:
        context.close()
    return path


def main(argv: list[str]) -> int:
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM_ARGS
    from tests.tiers import find

    out = Path(argv[0]) if argv else OUT
    executable = find("chromium", "/usr/bin/chromium")
    if executable is None:
        print("chromium is not installed: apt-get install chromium")
        return 1
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        for name in DEMOS:
            print("wrote", take(browser, name, out.resolve()))
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
