"""The rule that decides which pages get a Run button (docs/_ext/tryit.py),
on small pages parsed here: no browser, no build."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from docutils.core import publish_doctree

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
import tryit  # noqa: E402

pytestmark = pytest.mark.no_cover


def steps(rst):
    doctree = publish_doctree(rst, settings_overrides={"report_level": 5})
    return tryit.page_steps(doctree)


def test_the_steps_are_what_sybil_runs_in_page_order():
    page = steps(
        """
.. invisible-code-block: python

   x = 1

>>> x
1

.. skip: next

>>> skipped()

.. skip: start

>>> also_skipped()

.. skip: end

.. clear-namespace

>>> 2
2
"""
    )
    kinds = [(step[0], step[1].strip() if len(step) > 1 else "") for step in page]
    assert kinds == [
        ("code", "x = 1"),
        ("doctest", ">>> x\n1"),
        ("clear", ""),
        ("doctest", ">>> 2\n2"),
    ]


def test_flask_and_the_standard_library_run_in_the_browser():
    page = steps(
        """
.. invisible-code-block: python

   import csv, io
   from flask import Flask, stream_with_context
   from markupsafe import escape

>>> import json
"""
    )
    assert tryit.why_not_runnable(page) is None


@pytest.mark.parametrize(
    ("code", "need", "module"),
    [
        ("from redis import Redis", "a Redis server", "redis"),
        ("import socket", "a network socket", "socket"),
        ("from tests.servers import serve", "the project's test servers", "tests"),
        ("import subprocess", "another process", "subprocess"),
        ("import threading\nthreading.Thread(target=print).start()", "a thread", None),
        ("import msgspec", tryit.UNKNOWN, "msgspec"),
    ],
)
def test_a_page_that_needs_what_a_tab_lacks_gets_a_reason(code, need, module):
    body = "\n".join("   " + line for line in code.splitlines())
    page = steps(f".. invisible-code-block: python\n\n{body}\n\n>>> 1\n1\n")
    found = tryit.why_not_runnable(page)
    assert found is not None
    assert found[0] == need
    assert module is None or found[1].split(".")[0] == module


def test_a_snippet_module_is_followed_import_by_import():
    """A page that imports only a snippet is judged by what the snippet
    imports: a page that imports a module of snippets/ that imports redis
    gets no button (redis, or an import before it, is the reason)."""
    with_redis = [
        path.stem
        for path in sorted((ROOT / "snippets").glob("*.py"))
        if "import redis" in path.read_text() or "from redis" in path.read_text()
    ]
    assert with_redis
    for name in with_redis:
        page = steps(f".. invisible-code-block: python\n\n   import snippets.{name}\n")
        found = tryit.why_not_runnable(page)
        assert found is not None, name
        assert found[1].split(".")[0] != "snippets", (name, found)
