"""Sphinx configuration. The pages live in docs/; this file is at the root.

Run from the root with ``sphinx-build -c . docs _build/html`` (the Makefile
does this).
"""

import contextlib
import io
import os
import sys
from importlib import metadata
from pathlib import Path

from sphinx.directives.code import LiteralIncludeReader

# Social cards are off (below), but sphinxext-opengraph imports matplotlib
# for them whenever it is installed (the full lock has it): 1.5 s of every
# build, a rebuild after one edit included. Hidden from that import, it
# prints "matplotlib is not installed, social cards will not be generated".
sys.modules["matplotlib"] = None  # type: ignore[assignment]
try:
    with contextlib.redirect_stdout(io.StringIO()):
        import sphinxext.opengraph  # noqa: F401
finally:
    del sys.modules["matplotlib"]

ROOT = Path(__file__).resolve().parent
INVENTORIES = ROOT / "docs" / "_intersphinx"
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

project = "Flask Streaming Patterns"
author = "The Flask Streaming Patterns team"
copyright = "2026, " + author

# Read from the installed packages, so the note cannot drift from the lock.
FLASK_VERSION = metadata.version("flask")
WERKZEUG_VERSION = metadata.version("werkzeug")
JINJA_VERSION = metadata.version("jinja2")
version = release = FLASK_VERSION  # the site documents this Flask release
VERIFIED = f"Flask {FLASK_VERSION}, Werkzeug {WERKZEUG_VERSION}, Jinja {JINJA_VERSION}"

extensions = [
    "sphinx.ext.intersphinx",
    "sphinx_copybutton",
    "sphinx_design",
    "proofs",  # docs/_ext/proofs.py: the :test: role and the pages it links to
    "search_entries",  # docs/_ext/search_entries.py: index entries kept for search
    "site_meta",  # docs/_ext/site_meta.py: sidebar captions axe-core accepts
    "tryit",  # docs/_ext/tryit.py: a Run button on in-process examples (Pyodide)
    "sphinx_sitemap",
    "sphinxext.opengraph",
    "sphinx_llms_txt",
]

exclude_patterns = ["_intersphinx", "**/_data"]
nitpicky = True
# Quotes and ellipses only: "--" in a table or an option stays "--".
smartquotes_action = "qe"
default_role = "code"
highlight_language = "python"

rst_epilog = f"""
.. |flask_version| replace:: {FLASK_VERSION}
.. |werkzeug_version| replace:: {WERKZEUG_VERSION}
.. |jinja_version| replace:: {JINJA_VERSION}
.. |verified| replace:: {VERIFIED}
"""

# Offline cross-references: each inventory is committed (make inventories),
# the links still point at the official sites.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3.11/", str(INVENTORIES / "python.inv")),
    "flask": (
        "https://flask.palletsprojects.com/en/stable/",
        str(INVENTORIES / "flask.inv"),
    ),
    "werkzeug": (
        "https://werkzeug.palletsprojects.com/en/stable/",
        str(INVENTORIES / "werkzeug.inv"),
    ),
    "jinja": (
        "https://jinja.palletsprojects.com/en/stable/",
        str(INVENTORIES / "jinja.inv"),
    ),
}

# :manpage:`pipe(7)` links to the Linux man-pages project.
manpages_url = "https://man7.org/linux/man-pages/man{section}/{page}.{section}.html"

html_theme = "furo"
html_title = project
html_favicon = "docs/_static/favicon.svg"
html_static_path = ["docs/_static"]
html_css_files = ["site.css"]

# Where the site is published: Read the Docs sets its canonical URL; a local
# build uses the project's default. It feeds sitemap.xml and OpenGraph tags.
html_baseurl = os.environ.get(
    "READTHEDOCS_CANONICAL_URL",
    os.environ.get(
        "FSP_SITE_URL", "https://flask-streaming-patterns.readthedocs.io/en/latest/"
    ),
)
sitemap_url_scheme = "{link}"
ogp_site_url = html_baseurl
ogp_social_cards = {"enable": False}  # no image generation in the build
llms_txt_summary = (
    "A tested cookbook of every practical way to stream HTTP with Flask: each "
    "example is a real module executed in CI, each claim is linked to its test."
)
html_theme_options = {
    "announcement": f"Every example on this site runs in CI against {VERIFIED}.",
}

# The repository, if the site is told where it lives (empty by default, so a
# local build links nowhere outside the site): e.g.
# FSP_REPO_URL=https://github.com/owner/flask-streaming-patterns make html
proofs_repo_url = os.environ.get("FSP_REPO_URL", "").rstrip("/")
proofs_repo_branch = os.environ.get("FSP_REPO_BRANCH", "main")
if proofs_repo_url:
    html_theme_options |= {
        "source_repository": proofs_repo_url + "/",
        "source_branch": proofs_repo_branch,
        "source_directory": "docs/",
    }

# Copy code without ">>> " / "... " prompts and without output lines. A bare
# "..." (the blank line that closes a for/with/def body) is kept as an empty
# line: without it, a pasted block that goes on after the body is a
# SyntaxError in the REPL (tests/site_checks/test_built_site_browser.py).
copybutton_prompt_text = r">>> |\.\.\. |\.\.\.$"
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True
copybutton_remove_prompts = True


def _trim_region(self, location=None):
    """Drop the blank lines that ruff keeps before a ``# [name-end]`` marker,
    so a region shown with :start-after:/:end-before: ends at its code."""
    text, lines = _read(self, location)
    return text.rstrip("\n") + "\n", lines


_read = LiteralIncludeReader.read
LiteralIncludeReader.read = _trim_region
