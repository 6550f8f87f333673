"""Sybil: run every example on every page, and every docstring example in
snippets/. This must be the ROOT conftest so that Sybil sees docs/ and
snippets/ (pytest only asks conftest files at or above a path to collect it).
"""

from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

from sybil import Sybil
from sybil.parsers.rest import (
    ClearNamespaceParser,
    DocTestParser,
    PythonCodeBlockParser,
    SkipParser,
)

OPTIONS = ELLIPSIS | NORMALIZE_WHITESPACE

pages = Sybil(
    parsers=[
        DocTestParser(optionflags=OPTIONS),
        PythonCodeBlockParser(),
        SkipParser(),
        ClearNamespaceParser(),
    ],
    # patterns use Path.match, which matches from the right: "*.rst" finds
    # pages in every part folder ("**" would not be recursive).
    path="docs",
    patterns=["*.rst"],
)

docstrings = Sybil(
    parsers=[DocTestParser(optionflags=OPTIONS), SkipParser()],
    path="snippets",
    patterns=["*.py"],
)

pytest_collect_file = (pages + docstrings).pytest()
