"""The one place that says which folders of docs/ are generated.

docs/_ext/proof_pages.py writes them at every build (git ignores them):

* ``docs/proof/``: one page per test module, each test with its anchor;
* ``docs/code/``: every snippet and template, whole.

Sybil (conftest.py), sphinx-lint and livehtml (Makefile), the integrity test
and the site walks read this tuple instead of naming the folders again.
"""

GENERATED = ("proof", "code")
