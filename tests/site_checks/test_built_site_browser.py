"""The built site, in Chromium: it fits every screen, copied examples run,
and axe-core finds no critical or serious violation.

``make test`` builds the site before it runs these. Each check visits every
hand-written page of ``_build/html`` (the generated proof and code pages
too where it says so), served on 127.0.0.1.
"""

from __future__ import annotations

import code
import concurrent.futures
import contextlib
import functools
import http.server
import io
import re
import threading
from pathlib import Path

import pytest

from tests.servers import STRICT

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
DOCS = ROOT / "docs"
WIDTHS = {"desktop": 1366, "phone": 390}
SKIP_TOP = {"_static", "_sources", "_images", "genindex.html", "search.html"}
# Each walk over the site is cut into parts, each a test of its own that
# pytest-xdist may run in another worker (``make test`` runs ``-n``; see
# SPREAD in conftest.py): the walks are the longest tests of the suite. Part i
# takes every n-th page.
PARTS = {"overflow": 2, "paste": 3, "axe": 4}


def parts(walk):
    """The ids 1of4, 2of4...: conftest.py's scheduler spreads such tests."""
    n = PARTS[walk]
    return [pytest.param(i, id=f"{i + 1}of{n}") for i in range(n)]


def share(pages, walk, part):
    return pages[part :: PARTS[walk]]


def site_pages(generated=False):
    if not (HTML / "index.html").exists():
        return []
    pages = []
    for path in sorted(HTML.rglob("*.html")):
        rel = path.relative_to(HTML)
        if rel.parts[0] in SKIP_TOP:
            continue
        if rel.parts[0] in ("proof", "code") and not generated:
            continue
        pages.append(rel.as_posix())
    return pages


@pytest.fixture(scope="module")
def site():
    """_build/html on a free port; yields its base URL."""
    if not (HTML / "index.html").exists():
        reason = "the site is not built: run make html (make test does)"
        if STRICT:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    handler = functools.partial(Quiet, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def tab(browser):
    context = browser.new_context()
    context.add_init_script(RECORD_COPIES)
    page = context.new_page()
    yield page
    context.close()


# At 1,366 px every table fits its column. On a phone a wide table may scroll
# inside its own box (furo's table-wrapper, overflow-x: auto), never the page.
OVERFLOW = """(phone) => {
  const root = document.documentElement;
  const problems = [];
  if (root.scrollWidth > root.clientWidth + 1)
    problems.push(`page is ${root.scrollWidth}px wide in ${root.clientWidth}px`);
  for (const table of document.querySelectorAll("article table")) {
    const box = table.parentElement;
    const scrolls = ["auto", "scroll"].includes(getComputedStyle(box).overflowX);
    if (table.scrollWidth > box.clientWidth + 1 && !(phone && scrolls)) {
      const head = (table.querySelector("th, td") || table).innerText.slice(0, 40);
      problems.push(`table "${head}": ${table.scrollWidth}px in ${box.clientWidth}px`);
    }
  }
  for (const banner of document.querySelectorAll(".announcement"))
    if (banner.scrollWidth > banner.clientWidth + 1)
      problems.push(`banner is ${banner.scrollWidth}px in ${banner.clientWidth}px`);
  return problems;
}"""


@pytest.mark.timeout(600)
@pytest.mark.parametrize("part", parts("overflow"))
def test_no_page_scrolls_sideways_and_no_table_is_cut_off(site, tab, part):
    """Every page, generated ones included, at each width of WIDTHS: the page
    is loaded once and laid out at each width in turn."""
    every = site_pages(generated=True)
    assert len(every) > 40
    found = {}
    for rel in share(every, "overflow", part):
        tab.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})
        tab.goto(f"{site}/{rel}", wait_until="domcontentloaded")
        for name, width in WIDTHS.items():
            tab.set_viewport_size({"width": width, "height": 900})
            if problems := tab.evaluate(OVERFLOW, width < 600):
                found[f"{rel} at {name} ({width} px)"] = problems
    assert not found


# -- copy, then paste -------------------------------------------------------------


# ClipboardJS copies through a hidden textarea: record what each copy event
# carries, so a test reads exactly what the reader's clipboard would hold.
RECORD_COPIES = """
window.__copied = [];
document.addEventListener("copy", event => {
  const source = event.target;
  window.__copied.push(source && "value" in source ? source.value
                                                   : String(document.getSelection()));
}, true);
"""
SESSIONS = "div.highlight:has(> pre > .gp)"  # blocks that show a Python session


def copied_examples(tab):
    """(copied text, shown text) for every session block on the open page."""
    boxes = tab.locator(SESSIONS)
    pairs = []
    for i in range(boxes.count()):
        box = boxes.nth(i)
        box.hover()
        box.locator("button.copybtn").click(force=True)
        copied = tab.evaluate("() => window.__copied.pop()")
        pairs.append((copied, box.locator("pre").inner_text()))
    return pairs


INVISIBLE = re.compile(
    r"^\.\. invisible-code-block: python\n((?:\n|   .*\n)+)", re.MULTILINE
)


def setup_code(rel, *, teardown=False):
    """The page's invisible set-up blocks, as a reader's session would have
    them (imports, a test client). A block whose first line is ``# teardown``
    (a page that started servers stops them there) is left out, or, with
    ``teardown=True``, is all that is returned."""
    source = DOCS / rel.replace(".html", ".rst")
    text = source.read_text()
    blocks = [
        "\n".join(line[3:] for line in b.splitlines()) for b in INVISIBLE.findall(text)
    ]
    return "\n".join(
        b for b in blocks if b.lstrip().startswith("# teardown") == teardown
    )


def paste(console, text):
    """Feed pasted text to a REPL line by line, as a terminal would, then the
    Enter a reader presses; return what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        for line in [*text.split("\n"), ""]:
            console.push(line)
    return out.getvalue()


def pages_with_examples():
    return [rel for rel in site_pages() if "&gt;&gt;&gt; " in (HTML / rel).read_text()]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("part", parts("paste"))
def test_every_copied_example_runs_when_pasted_into_a_repl(
    site, tab, monkeypatch, part
):
    every = pages_with_examples()
    assert len(every) > 15
    pages = share(every, "paste", part)
    monkeypatch.chdir(ROOT)
    failures, blocks = [], 0
    # A reader's REPL has no running event loop; Playwright's thread does. The
    # console runs in a thread of its own, so `asyncio.run(...)` pastes work.
    repl = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    for rel in pages:
        tab.goto(f"{site}/{rel}", wait_until="domcontentloaded")
        console = code.InteractiveConsole({"__name__": "__console__"})
        repl.submit(console.runsource, setup_code(rel), symbol="exec").result()
        for text, display in copied_examples(tab):
            blocks += 1
            printed = repl.submit(paste, console, text).result()
            expected_error = "Traceback" in display or "Error" in display
            if "SyntaxError" in printed or (
                "Traceback" in printed and not expected_error
            ):
                failures.append(f"{rel}: {text[:60]!r}: {printed[-300:]}")
        teardown = setup_code(rel, teardown=True)
        repl.submit(console.runsource, teardown, symbol="exec").result()
    repl.shutdown()
    assert blocks > 150 // PARTS["paste"]  # over 150 on the whole site
    assert not failures


def test_a_blank_continuation_line_survives_the_copy(site, tab):
    """The case that broke 11 blocks: a bare `...` after a `with` body, then
    more code (the testing page has one)."""
    tab.goto(f"{site}/testing.html", wait_until="domcontentloaded")
    closed = [
        copied
        for copied, shown in copied_examples(tab)
        if re.search(r"^\.\.\. .*\n\.\.\.\n(?!\.\.\.)", shown, re.M)
    ]
    assert closed
    for text in closed:
        assert "\n\n" in text


# -- accessibility ----------------------------------------------------------------


def generated_samples():
    """The generated proof and code pages share two templates: axe checks the
    three largest of each (the longest names, the widest code)."""
    pages = set(site_pages(generated=True)) - set(site_pages())
    by_size = sorted(pages, key=lambda rel: (HTML / rel).stat().st_size)
    proof = [rel for rel in by_size if rel.startswith("proof/")]
    code = [rel for rel in by_size if rel.startswith("code/")]
    return proof[-3:] + code[-3:]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("part", parts("axe"))
def test_axe_finds_no_critical_or_serious_violation(site, tab, part):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    tab.set_viewport_size({"width": 1366, "height": 900})
    found = {}
    pages = site_pages() + generated_samples()
    assert len(pages) > 40
    for rel in share(pages, "axe", part):
        tab.goto(f"{site}/{rel}", wait_until="domcontentloaded")
        results = axe.run(tab)
        bad = [
            f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes)"
            for v in results.response["violations"]
            if v["impact"] in ("critical", "serious")
        ]
        if bad:
            found[rel] = bad
    assert not found
