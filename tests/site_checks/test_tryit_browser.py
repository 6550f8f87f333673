"""The Run button (docs/_ext/tryit.py) in Chromium, on the built site with
no network: every runnable block prints what its page shows, a stream is
shown chunk by chunk, Stop closes it, the keyboard reaches and presses it,
and axe-core finds nothing critical or serious with the widget open.

``make test`` builds the site first. The site is served on 127.0.0.1 and
every request for anything else is refused: Pyodide, the wheels and the
snippets come from the site itself.
"""

from __future__ import annotations

import doctest
import json
import re
import time
from pathlib import Path

import pytest

from tests.site_checks.test_built_site_browser import (  # noqa: F401 (fixture)
    HTML,
    serious_violations,
    site,
)

pytestmark = [pytest.mark.browser, pytest.mark.no_cover]
ROOT = Path(__file__).resolve().parents[2]

# The comparison Sybil makes (conftest.py: DocTestParser(optionflags=OPTIONS)).
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
CHECKER = doctest.OutputChecker()
PROGRAM = re.compile(
    r'<script type="application/json" id="tryit-program">(.*?)</script>', re.S
)
FINISHED = """(i) => {
  const out = document.querySelectorAll(".tryit-output")[i];
  return ["done", "failed", "stopped"].includes(out.dataset.state)
    && !document.querySelectorAll(".tryit-run")[i].disabled;
}"""
SHOWN = """(i) => Array.from(
  document.querySelectorAll(".tryit-output")[i].querySelectorAll(".tryit-example"),
  item => ({
    got: (item.querySelector(".tryit-got") || {textContent: ""}).textContent,
    exc: (item.querySelector(".tryit-exc") || {dataset: {}}).dataset.exc || null,
  }))"""
LOAD_SECONDS = 120  # Pyodide's first start, on a busy 2-core machine


def runnable_pages():
    """(page, its program) for each built page with a Run button."""
    found = []
    for path in sorted(HTML.rglob("*.html")):
        rel = path.relative_to(HTML).as_posix()
        if rel.startswith("_"):
            continue
        if match := PROGRAM.search(path.read_text()):
            found.append((rel, json.loads(match.group(1))))
    return found


def blocks_of(program):
    return [
        s for s in program["steps"] if s["kind"] == "doctest" and s["block"] is not None
    ]


@pytest.fixture(scope="module")
def offline(browser, site):  # noqa: F811 (the imported fixture)
    """A tab that may load the local site and nothing else; yields (tab,
    the refused URLs, the URLs asked for)."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    refused, asked = [], []

    def only_the_site(route):
        url = route.request.url
        asked.append(url)
        if url.startswith(site + "/"):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    context.route("**/*", only_the_site)
    tab = context.new_page()
    yield tab, refused, asked
    context.close()


def press_run(tab, i):
    """Reach block i's Run button with Tab from its code block (the copy
    button comes between them), press Enter."""
    tab.locator(".tryit-block pre").nth(i).focus()
    for _ in range(3):
        tab.keyboard.press("Tab")
        if tab.evaluate("document.activeElement.classList.contains('tryit-run')"):
            break
    assert tab.evaluate(
        "(i) => document.activeElement === document.querySelectorAll('.tryit-run')[i]",
        i,
    )
    tab.keyboard.press("Enter")
    tab.wait_for_function(FINISHED, arg=i, timeout=LOAD_SECONDS * 1000)


def mismatches(text, shown, differs):
    """The examples of a block whose output is not what the page shows
    (or, where the page documents a difference, not what the note says)."""
    examples = doctest.DocTestParser().get_examples(text)
    assert len(examples) == len(shown)
    bad = []
    for example, out in zip(examples, shown, strict=True):
        if example.source in differs:
            ok = CHECKER.check_output(differs[example.source], out["got"], OPTIONS)
            # the note is true only while CPython 3.11's output is not printed
            ok = ok and not CHECKER.check_output(example.want, out["got"], OPTIONS)
        elif example.exc_msg is not None:
            ok = out["exc"] is not None and CHECKER.check_output(
                example.exc_msg, out["exc"], OPTIONS
            )
        else:
            ok = out["exc"] is None and CHECKER.check_output(
                example.want, out["got"], OPTIONS
            )
        if not ok:
            bad.append(f"{example.source.strip()!r}: got {out}")
    return bad


@pytest.mark.timeout(1200)
def test_every_runnable_block_prints_what_its_page_shows(site, offline):  # noqa: F811
    """Each runnable page is loaded once; its blocks are run in order, each
    with the keyboard, and each example's output is compared with the page's
    as Sybil compares it. Nothing is fetched before the first Run, and
    nothing from outside the site at all."""
    tab, refused, asked = offline
    pages = runnable_pages()
    assert len(pages) >= 5
    failures, blocks, started, loads = [], 0, time.monotonic(), []
    for rel, program in pages:
        asked.clear()
        tab.goto(f"{site}/{rel}", wait_until="load")
        assert not [url for url in asked if "/pyodide-" in url or "/wheels/" in url]
        label = tab.locator(".tryit-run").first.inner_text()
        assert label == f"Run (downloads {program['megabytes']} MB once)"
        steps = blocks_of(program)
        assert tab.locator(".tryit-run").count() == len(steps)
        for i, step in enumerate(steps):
            press_run(tab, i)
            blocks += 1
            if "streamed" not in FOUND and longest_stream(tab, i) >= 3:
                FOUND["streamed"] = (rel, i)
            shown = tab.evaluate(SHOWN, i)
            if bad := mismatches(step["text"], shown, step["differs"]):
                failures.append(f"{rel} block {i + 1}: {bad}")
        assert tab.locator(".tryit-run").first.inner_text() == "Run"
        if not loads:  # the worker's requests pass the route too: none escape it
            assert any(url.endswith("/pyodide.asm.wasm") for url in asked)
            assert any(url.endswith(".whl") for url in asked)
        loads.append(int(tab.evaluate("document.documentElement.dataset.tryitLoadMs")))
    took = time.monotonic() - started
    print(
        f"\n{blocks} blocks on {len(pages)} pages in {took:.0f} s;"
        f" Python loaded in {min(loads) / 1000:.1f} to {max(loads) / 1000:.1f} s"
    )
    assert not failures
    assert not refused


def test_the_readme_states_the_first_click_download():
    """The README says what the button says: the megabytes the first click
    downloads (the build measures them)."""
    pages = runnable_pages()
    assert pages
    megabytes = {program["megabytes"] for _rel, program in pages}
    assert len(megabytes) == 1
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert f"downloads {megabytes.pop()} MB" in readme


def test_a_page_without_runnable_examples_loads_no_script_and_says_why(
    site,  # noqa: F811
    offline,
):
    """Every page with examples but no button says why in one line; none of
    them loads anything of the Run button's."""
    tab, refused, asked = offline
    notes = [
        path.relative_to(HTML).as_posix()
        for path in sorted(HTML.rglob("*.html"))
        if 'class="tryit-none"' in path.read_text()
    ]
    assert notes
    for rel in notes[:3]:
        asked.clear()
        tab.goto(f"{site}/{rel}", wait_until="load")
        assert tab.locator("p.tryit-none").count() == 1
        assert tab.locator(".tryit-run").count() == 0
        assert not [url for url in asked if "/_static/tryit/" in url]
    assert not refused


FOUND = {}  # what the walk above found, so that a test below need not walk


def longest_stream(tab, i):
    """The most chunks block i's run listed for one response."""
    return tab.evaluate(
        """(i) => { const n = {};
          const list = document.querySelectorAll(".tryit-chunks")[i];
          for (const li of list.children)
            n[li.dataset.response] = (n[li.dataset.response] || 0) + 1;
          return Math.max(0, ...Object.values(n)); }""",
        i,
    )


def first_streamed_block(tab, site, pages):  # noqa: F811
    """(page, block index) of the first block whose run lists 3 or more
    chunks of one response (found by the walk, if it ran first)."""
    if "streamed" in FOUND:
        return FOUND["streamed"]
    for rel, program in pages:
        tab.goto(f"{site}/{rel}", wait_until="load")
        for i, _step in enumerate(blocks_of(program)):
            tab.locator(".tryit-run").nth(i).click()
            tab.wait_for_function(FINISHED, arg=i, timeout=LOAD_SECONDS * 1000)
            if longest_stream(tab, i) >= 3:
                return rel, i
    pytest.fail("no runnable block reads a streamed body of 3 chunks or more")


PAUSED = """(i) => {
  const out = document.querySelectorAll(".tryit-output")[i];
  const next = document.querySelectorAll(".tryit-next")[i];
  return !next.hidden || out.dataset.state === "done";
}"""


@pytest.mark.timeout(600)
def test_a_chunk_is_shown_before_the_generator_makes_the_next(site, offline):  # noqa: F811
    """With "Pause at each chunk" on, the run stops after the first chunk
    (the checkpoint: Python waits for Next in the worker): the chunk is on
    the page, the block has no result yet, and the generator was asked for
    one chunk only. Next by Next, the block then ends with the page's
    output."""
    tab, refused, _asked = offline
    pages = runnable_pages()
    rel, i = first_streamed_block(tab, site, pages)
    print(f"\nthe stream watched: {rel}, block {i + 1}")
    program = dict(pages)[rel]
    tab.goto(f"{site}/{rel}", wait_until="load")
    tab.locator(".tryit-pause").nth(i).check()
    tab.locator(".tryit-run").nth(i).click()
    tab.wait_for_function(PAUSED, arg=i, timeout=LOAD_SECONDS * 1000)
    out = tab.locator(".tryit-output").nth(i)
    assert out.get_attribute("data-state") == "running"
    assert out.locator(".tryit-chunks li").count() == 1
    assert out.locator(".tryit-example").count() == 0
    assert "Paused after chunk 1:" in out.locator(".tryit-status").inner_text()
    nexts = 0
    while out.get_attribute("data-state") == "running":
        nexts += 1
        assert nexts < 10_000
        tab.locator(".tryit-next").nth(i).focus()
        tab.keyboard.press("Enter")
        tab.wait_for_function(PAUSED, arg=i, timeout=30_000)
    assert nexts >= 2
    step = blocks_of(program)[i]
    assert not mismatches(step["text"], tab.evaluate(SHOWN, i), step["differs"])
    assert not refused


FOREVER = """>>> from flask import Flask
>>> demo = Flask("demo")
>>> @demo.get("/forever")
... def forever():
...     def generate():
...         try:
...             n = 0
...             while True:
...                 n += 1
...                 yield f"{n}\\n"
...         finally:
...             print(f"cleanup after chunk {n}")
...     return generate()
...
>>> for chunk in demo.test_client().get("/forever").response:
...     pass
"""


@pytest.mark.timeout(600)
def test_stop_closes_an_endless_stream_and_its_cleanup_output_shows(
    site,  # noqa: F811
    offline,
):
    """A reader's edit of a block: an endless stream, paused after its first
    chunk, then Stop. The generator's ``finally`` runs (its print is in the
    output) and the block ends as stopped."""
    tab, refused, _asked = offline
    rel, _program = runnable_pages()[0]
    tab.goto(f"{site}/{rel}", wait_until="load")
    tab.locator(".tryit-edit").first.click()
    editor = tab.locator(".tryit-editor").first
    assert editor.evaluate("el => el === document.activeElement")
    editor.fill(FOREVER)
    tab.locator(".tryit-pause").first.check()
    tab.locator(".tryit-run").first.click()
    tab.wait_for_function(PAUSED, arg=0, timeout=LOAD_SECONDS * 1000)
    out = tab.locator(".tryit-output").first
    assert out.locator(".tryit-chunks li").all_inner_texts() == ["b'1\\n'"]
    tab.locator(".tryit-stop").first.focus()
    tab.keyboard.press("Enter")
    tab.wait_for_function(FINISHED, arg=0, timeout=30_000)
    assert out.get_attribute("data-state") == "stopped"
    assert "cleanup after chunk 1" in out.locator(".tryit-got").last.inner_text()
    assert not refused


def test_axe_finds_nothing_serious_with_the_widget_open(site, offline):  # noqa: F811
    """A runnable page with a block run, its output shown and another block
    open in the editor."""
    from axe_playwright_python.sync_playwright import Axe

    tab, refused, _asked = offline
    rel, _program = runnable_pages()[0]
    tab.goto(f"{site}/{rel}", wait_until="load")
    tab.locator(".tryit-run").first.click()
    tab.wait_for_function(FINISHED, arg=0, timeout=LOAD_SECONDS * 1000)
    if tab.locator(".tryit-edit").count() > 1:
        tab.locator(".tryit-edit").nth(1).click()
    assert tab.locator(".tryit-example").count() > 0
    assert serious_violations(tab, Axe(), []) == []
    assert not refused
