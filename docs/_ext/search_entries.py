"""Keep the search index's index entries across incremental builds.

Sphinx 9.0 collects a page's index entries for the search index while it
writes the page, after the environment is saved, so an incremental build
forgets the entries of every page it does not write again: the site's search
then no longer ranks a page first for the words its ``.. index:: !`` entries
name (tests/site_checks/test_search_browser.py). This keeps them in the
doctree folder and puts them back before the build reads.
"""

from __future__ import annotations

import contextlib
import pickle
from pathlib import Path


def _saved(app) -> Path:
    return Path(app.doctreedir) / "search-index-entries.pickle"


def restore(app, env, docnames):
    try:
        saved = pickle.loads(_saved(app).read_bytes())
    except (OSError, pickle.PickleError, EOFError):
        return
    entries = env._search_index_index_entries
    for docname, found in saved.items():
        if docname in env.found_docs and docname not in entries:
            entries[docname] = found


def save(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    with contextlib.suppress(OSError):
        _saved(app).write_bytes(pickle.dumps(app.env._search_index_index_entries))


def setup(app):
    app.connect("env-before-read-docs", restore)
    app.connect("build-finished", save)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
