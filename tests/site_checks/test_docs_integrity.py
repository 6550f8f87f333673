"""The site's integrity: what a reader sees is what runs.

Three checks, each also fed a bad page to prove it can fail:

* no Python-looking block that Sybil would skip silently (Sybil runs only
  ``.. code-block:: python``, ``.. invisible-code-block: python`` and bare
  ``>>>`` examples; ``py``, ``python3``, ``pycon`` and ``::`` blocks are
  shown but never run);
* no page that includes a snippet but runs no example;
* no snippet that no page includes.
"""

import re
from pathlib import Path

import pytest
from generated import GENERATED  # docs/_ext: on the path once conftest is imported
from sybil.evaluators.doctest import DocTestEvaluator

from conftest import pages as sybil_pages

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SNIPPETS = ROOT / "snippets"

SKIPPED_LANGUAGES = {"py", "py3", "python3", "pycon", "ipython", "pytb", "default"}
DIRECTIVE = re.compile(
    r"^(?P<indent>[ \t]*)\.\. (?P<name>code-block|code|sourcecode)::"
    r"[ \t]*(?P<lang>\S*)",
    re.MULTILINE,
)
INCLUDE = re.compile(r"^\s*\.\. literalinclude::\s*/\.\./snippets/(\S+\.py)\s*$", re.M)
PYTHONISH = re.compile(r"^\s*(>>>|def |class |import |from \S+ import |@app\.)", re.M)


def all_pages():
    return sorted(
        p
        for p in DOCS.rglob("*.rst")
        if "_build" not in p.parts and p.relative_to(DOCS).parts[0] not in GENERATED
    )


def block_body(text, start, indent):
    """The indented body that follows a directive or a '::' paragraph."""
    lines = text[start:].splitlines()[1:]
    body = []
    for line in lines:
        if line.strip() and len(line) - len(line.lstrip()) <= len(indent):
            break
        body.append(line)
    return "\n".join(body)


def unrun_python_blocks(text):
    """Describe every block that looks like Python but that Sybil skips."""
    problems = []
    for match in DIRECTIVE.finditer(text):
        lang = match["lang"].lower()
        body = block_body(text, match.start(), match["indent"])
        line = text.count("\n", 0, match.start()) + 1
        if lang in SKIPPED_LANGUAGES:
            problems.append(f"line {line}: '{match['name']}:: {lang}' is never run")
        elif lang == "python" and re.search(r"^\s*>>>", body, re.M):
            problems.append(f"line {line}: '>>>' inside a python code-block")
        elif not lang and PYTHONISH.search(body):
            problems.append(f"line {line}: Python in a block with no language")
    # "Paragraph::" literal blocks: shown, never run.
    for match in re.finditer(r"^(?P<indent>[ \t]*)(?!\.\.)\S.*::[ \t]*$", text, re.M):
        body = block_body(text, match.start(), match["indent"])
        if PYTHONISH.search(body):
            line = text.count("\n", 0, match.start()) + 1
            problems.append(f"line {line}: Python in a '::' literal block")
    return problems


def example_count(path):
    """How many ``>>>`` examples Sybil runs on a page (set-up blocks excluded)."""
    document = sybil_pages.parse(path)
    return sum(isinstance(e.region.evaluator, DocTestEvaluator) for e in document)


def included_snippets(paths):
    return {name for path in paths for name in INCLUDE.findall(path.read_text())}


# --- the checks over the real site --------------------------------------------


@pytest.mark.parametrize("page", all_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_no_python_block_that_sybil_skips(page):
    assert unrun_python_blocks(page.read_text()) == []


@pytest.mark.parametrize("page", all_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_page_that_includes_a_snippet_runs_examples(page):
    if INCLUDE.search(page.read_text()):
        assert example_count(page) > 0, f"{page} shows a snippet but runs nothing"


def test_every_snippet_is_included_by_a_page():
    snippets = {p.name for p in SNIPPETS.glob("*.py") if p.name != "__init__.py"}
    assert snippets - included_snippets(all_pages()) == set()


# --- each check can fail ----------------------------------------------------------

BAD_BLOCKS = """\
Title
=====

.. code-block:: py

   print("never run")

.. code-block:: python

   >>> 1 + 1
   2

.. code-block::

   import os

Example::

   >>> print("shown, not run")

.. code-block:: python

   x = 1

.. code-block:: text

   import this is prose in a text block: allowed
"""


def test_skipped_block_check_can_fail():
    problems = unrun_python_blocks(BAD_BLOCKS)
    assert [p.split(":", 1)[0] for p in problems] == [
        "line 4",
        "line 8",
        "line 13",
        "line 17",
    ]


def test_page_without_examples_check_can_fail(tmp_path):
    page = tmp_path / "bad.rst"
    page.write_text(
        "Bad\n===\n\n.. literalinclude:: /../snippets/responses.py\n\n"
        "Prose, but no example runs.\n"
    )
    assert INCLUDE.search(page.read_text())
    assert example_count(page) == 0
    page.write_text(page.read_text() + "\n>>> 1 + 1\n2\n")
    assert example_count(page) == 1


def test_unincluded_snippet_check_can_fail(tmp_path):
    page = tmp_path / "one.rst"
    page.write_text(".. literalinclude:: /../snippets/responses.py\n")
    assert included_snippets([page]) == {"responses.py"}
    snippets = {"responses.py", "orphan.py"}
    assert snippets - included_snippets([page]) == {"orphan.py"}


def unclosed_examples(text):
    """Multi-line ``>>>`` examples without a bare ``...`` line to close them:
    pasted into a REPL, the next statement would be a SyntaxError."""
    problems, lines = [], text.split("\n")
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)>>> ", line)
        if not match:
            continue
        prefix = re.escape(match[1]) + r"\.\.\.( |$)"
        j = i + 1
        while j < len(lines) and re.match(prefix, lines[j]):
            j += 1
        if j > i + 1 and lines[j - 1].strip() != "...":
            problems.append(f"line {i + 1}: {line.strip()[:50]}")
    return problems


@pytest.mark.parametrize("page", all_pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_multiline_example_ends_with_a_bare_continuation(page):
    """What the browser check proves on the built site, caught in the source:
    tests/site_checks/test_built_site_browser.py pastes every copied block."""
    assert not unclosed_examples(page.read_text())


def test_unclosed_example_check_can_fail():
    assert unclosed_examples(">>> for i in x:\n...     print(i)\n>>> i\n")
    assert not unclosed_examples(">>> for i in x:\n...     print(i)\n...\n>>> i\n")
