"""The built site, in Chromium: it fits every screen, copied examples paste
as the statements Sybil runs, and axe-core finds no critical or serious
violation.

``make test`` builds the site before it runs these. Each check visits every
hand-written page of ``_build/html`` (the generated proof and code pages
too where it says so), served on 127.0.0.1. axe's color-contrast rule looks
at each chain of styles once per part (MARK_SEEN says why that is enough).
"""

from __future__ import annotations

import codeop
import doctest
import functools
import http.server
import re
import threading
from pathlib import Path

import pytest
from generated import GENERATED  # docs/_ext, on the path (root conftest)

from tests.servers import STRICT

# The walks read built HTML and run no snippet: coverage's tracer only cost
# them CPU (tests/conftest.py).
pytestmark = [pytest.mark.browser, pytest.mark.no_cover]

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
DOCS = ROOT / "docs"
WIDTHS = {"desktop": 1366, "phone": 390}
SKIP_TOP = {"_static", "_sources", "_images", "genindex.html", "search.html"}
# Each walk over the site is cut into parts, each a test of its own that
# pytest-xdist may run in another worker (``make test`` runs ``-n``; see
# SPREAD in conftest.py): the walks are the longest tests of the suite. Part i
# takes every n-th page.
PARTS = {"overflow": 2, "paste": 1, "axe": 4}


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
        if rel.parts[0] in GENERATED and not generated:
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
OVERFLOW = r"""(phone) => {
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
  // No word breaks inside a table cell: each word, in its own font, fits
  // the cell's content box. Code is one token; prose may break after a
  // hyphen ("in-|memory"), as typesetting does.
  const ruler = document.createElement("span");
  ruler.style.cssText = "position:absolute;visibility:hidden;white-space:pre";
  document.body.append(ruler);
  const tooWide = (node, text, room, split) => {
    ruler.style.font = getComputedStyle(node).font;
    for (const word of text.split(split)) {
      if (!word) continue;
      ruler.textContent = word;
      if (ruler.getBoundingClientRect().width > room + 1)
        problems.push(`"${word}" breaks in a ${Math.round(room)}px cell`);
    }
  };
  for (const cell of document.querySelectorAll("article table td, article table th")) {
    if (!cell.getClientRects().length) continue;  // in a tab not shown
    const style = getComputedStyle(cell);
    const room = cell.clientWidth - parseFloat(style.paddingLeft)
                 - parseFloat(style.paddingRight);
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const text = walker.currentNode;
      const code = text.parentElement.closest("code");
      tooWide(text.parentElement, text.textContent, room,
              code ? /\s+/ : /(?<=-)|\s+/);
    }
  }
  ruler.remove();
  // A pattern page's recipe starts on the first screen (1,366 x 900).
  const recipe = document.querySelector("div.recipe");
  const top = recipe && Math.round(recipe.getBoundingClientRect().top + scrollY);
  if (!phone && recipe && top > 900) problems.push(`the recipe starts at ${top}px`);
  for (const pre of document.querySelectorAll("div.recipe pre"))
    if (pre.scrollWidth > pre.clientWidth + 1)
      problems.push(`a recipe scrolls: ${pre.scrollWidth}px in ${pre.clientWidth}px`);
  return problems;
}"""


@pytest.mark.timeout(600)
@pytest.mark.parametrize("part", parts("overflow"))
def test_no_page_scrolls_sideways_and_no_table_is_cut_off(site, tab, part):
    """Every page, generated ones included, at each width of WIDTHS: the page
    is loaded once and laid out at each width in turn. Every other page takes
    the widths in the reverse order, so it loads at the width the page before
    it ended at: no page is laid out again only to be left (a quarter less
    CPU than going back to the desktop width before each load)."""
    every = site_pages(generated=True)
    assert len(every) > 40
    found, checked = {}, []
    widths = list(WIDTHS.items())
    for i, rel in enumerate(share(every, "overflow", part)):
        order = widths if i % 2 == 0 else widths[::-1]
        tab.set_viewport_size({"width": order[0][1], "height": 900})
        tab.goto(f"{site}/{rel}", wait_until="domcontentloaded")
        for name, width in order:
            tab.set_viewport_size({"width": width, "height": 900})
            assert tab.evaluate("innerWidth") == width
            checked.append((rel, name))
            if problems := tab.evaluate(OVERFLOW, width < 600):
                found[f"{rel} at {name} ({width} px)"] = problems
    assert not found
    assert (
        len(checked)
        == len(set(checked))
        == len(WIDTHS) * len(share(every, "overflow", part))
    )


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


# Each session block's copy button is clicked in the page (the click runs
# the same ClipboardJS handler as a reader's), and what the copy event
# carried is read back with the text the block shows: one round trip a page.
COPY_ALL = """(selector) => Array.from(document.querySelectorAll(selector), box => {
  box.querySelector("button.copybtn").click();
  return [window.__copied.pop(), box.querySelector("pre").innerText];
})"""


def copied_examples(tab):
    """(copied text, shown text) for every session block on the open page."""
    pairs = tab.evaluate(COPY_ALL, SESSIONS)
    assert all(copied is not None for copied, _shown in pairs)  # each copied
    return pairs


def repl_statements(text):
    """The statements a Python REPL compiles, one by one, when ``text`` is
    pasted into it and Enter is pressed: the buffering of
    :meth:`code.InteractiveConsole.push`, which compiles the lines so far
    after each line and runs them once they make a whole statement, and
    drops them with a SyntaxError when they cannot."""
    compiler = codeop.CommandCompiler()
    statements, buffer = [], []
    for line in [*text.split("\n"), ""]:
        buffer.append(line)
        source = "\n".join(buffer)
        try:
            compiled = compiler(source, "<console>", "single")
        except (SyntaxError, ValueError, OverflowError) as exc:
            statements.append(f"{type(exc).__name__}: {source!r}")
            buffer = []
            continue
        if compiled is not None:  # a whole statement: the REPL runs it
            if source.strip():
                statements.append(source.rstrip())
            buffer = []
    return statements


def shown_statements(display):
    """The examples of a block as doctest (and so Sybil) reads and runs
    them: one statement each."""
    return [e.source.rstrip() for e in doctest.DocTestParser().get_examples(display)]


def pages_with_examples():
    return [rel for rel in site_pages() if "&gt;&gt;&gt; " in (HTML / rel).read_text()]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("part", parts("paste"))
def test_every_copied_example_pastes_as_the_statements_sybil_runs(site, tab, part):
    """Each copy button's text, pasted into a REPL, makes exactly the
    statements of the block, in order: the statements Sybil runs on every
    page of this site, in one namespace, as a reader's session would. So a
    pasted block runs as it ran for Sybil (a block whose copy lost a line,
    or ran two statements together, fails here). Nothing is executed here:
    Sybil runs the same statements in the same make test."""
    every = pages_with_examples()
    assert len(every) > 15
    failures, blocks = [], 0
    for rel in share(every, "paste", part):
        tab.goto(f"{site}/{rel}", wait_until="domcontentloaded")
        for text, display in copied_examples(tab):
            blocks += 1
            shown = shown_statements(display)
            assert shown, display  # a session block has examples
            if (pasted := repl_statements(text)) != shown:
                failures.append(f"{rel}: pasted {pasted!r}, shown {shown!r}")
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


# color-contrast, the costliest rule, looks at every element with text, and
# most of them are alike: the tokens of highlighted code, the navigation that
# every page repeats. An element's contrast depends only on the CSS that
# reaches it, which its own tag, class and style attribute and its
# ancestors' select. So every rule but color-contrast runs on the whole page,
# and color-contrast leaves out each subtree whose elements all have a chain
# (tag.class[style], up to <body>) already checked in this part, on an
# earlier page or earlier on this one. The four parts' CPU fell from 115 s
# (every rule on every element) to 77 s;
# test_a_style_seen_once_is_still_checked proves a bad colour is still found.
MARK_SEEN = """(seen) => {
  const known = new Set(seen);
  const full = new Set();
  const visit = (el, below) => {
    const key = `${el.tagName}.${el.className}[${el.getAttribute("style") || ""}]`;
    const chain = below ? `${key} < ${below}` : key;
    let all = known.has(chain);
    known.add(chain);
    for (const child of el.children) all = visit(child, chain) && all;
    if (all) full.add(el);
    return all;
  };
  visit(document.body, "");
  const mark = el => {
    if (full.has(el)) el.setAttribute("data-axe-seen", "");
    else for (const child of el.children) mark(child);
  };
  mark(document.body);
  return Array.from(known);
}"""
SKIP_SEEN = {"include": [["html"]], "exclude": [["[data-axe-seen]"]]}
ALL_BUT_CONTRAST = {
    "resultTypes": ["violations"],
    "rules": {"color-contrast": {"enabled": False}},
}
CONTRAST = {"resultTypes": ["violations"], "runOnly": ["color-contrast"]}


# axe-playwright-python's Axe.run evaluates the whole of axe.min.js (570 KB)
# before each run: it is injected once a page here, and only the findings come
# back (id, impact and the nodes' selectors), not axe's whole results object.
AXE_RUN = """([context, options]) => axe.run(context || document, options).then(
  results => results.violations.map(v => ({id: v.id, impact: v.impact,
                                            nodes: v.nodes.map(n => n.target)})))"""


def serious_violations(tab, axe, seen):
    """axe-core's critical and serious findings on the loaded page; for
    color-contrast, the chains in ``seen`` left out (and this page's added)."""
    tab.evaluate(axe.axe_script)
    found = tab.evaluate(AXE_RUN, [None, ALL_BUT_CONTRAST])
    seen[:] = tab.evaluate(MARK_SEEN, seen)
    found += tab.evaluate(AXE_RUN, [SKIP_SEEN, CONTRAST])
    return [
        f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes, first {v['nodes'][0]})"
        for v in found
        if v["impact"] in ("critical", "serious")
    ]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("part", parts("axe"))
def test_axe_finds_no_critical_or_serious_violation(site, tab, part):
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    tab.set_viewport_size({"width": 1366, "height": 900})
    found = {}
    seen = []
    pages = site_pages() + generated_samples()
    assert len(pages) > 40
    for rel in share(pages, "axe", part):
        tab.goto(f"{site}/{rel}", wait_until="domcontentloaded")
        if bad := serious_violations(tab, axe, seen):
            found[rel] = bad
    assert not found
    assert seen  # what the part checked for contrast


def test_a_style_seen_once_is_still_checked(site, tab):
    """A keyword colour with too little contrast is found on a page whose
    other chains were all seen already, and a chain seen on an earlier page
    is not checked again."""
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    tab.set_viewport_size({"width": 1366, "height": 900})
    tab.goto(f"{site}/basics/responses.html", wait_until="domcontentloaded")
    seen = []
    assert serious_violations(tab, axe, seen) == []
    keyword = [key for key in seen if key.startswith("SPAN.k[] < ")]
    assert keyword
    pale = "div.highlight pre span.k { color: #f4f4f4 !important; }"
    tab.reload(wait_until="domcontentloaded")
    tab.add_style_tag(content=pale)
    assert serious_violations(tab, axe, list(seen)) == []  # span.k was seen
    tab.reload(wait_until="domcontentloaded")
    tab.add_style_tag(content=pale)
    unseen = [key for key in seen if key not in keyword]
    bad = serious_violations(tab, axe, unseen)
    assert len(bad) == 1 and bad[0].startswith("color-contrast (serious")
    assert ".k" in bad[0].split("first ")[1]  # a keyword of a code block
