"""Sybil: run every example on every page, and every docstring example in
snippets/. This must be the ROOT conftest so that Sybil sees docs/ and
snippets/ (pytest only asks conftest files at or above a path to collect it).
"""

import sys
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE
from pathlib import Path

from sybil import Sybil
from sybil.parsers.rest import (
    ClearNamespaceParser,
    DocTestParser,
    PythonCodeBlockParser,
    SkipParser,
)

sys.path.insert(0, str(Path(__file__).parent / "docs" / "_ext"))
from generated import GENERATED

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
    # The generated folders (docs/_ext/generated.py) show the tests and
    # snippets: they are not examples.
    excludes=[
        f"{folder}/{'*/' * depth}*.rst" for folder in GENERATED for depth in range(4)
    ],
)

docstrings = Sybil(
    parsers=[DocTestParser(optionflags=OPTIONS), SkipParser()],
    path="snippets",
    patterns=["*.py"],
)

pytest_collect_file = (pages + docstrings).pytest()

# The xdist scheduler (longest first, from recorded durations) and the reaper
# of processes a test left behind: each in a module of its own.
pytest_plugins = ["tests.scheduler", "tests.reaper"]


def pytest_configure(config):
    """Snippets that sign cookies refuse to start without ``FLASK_SECRET_KEY``
    (snippets/checks.py): the run gets a random one, inherited by the
    servers it starts.

    Under pytest-xdist (``make test`` runs ``-n``), each worker gets a
    temporary folder of its own: snippets keep their files in
    ``tempfile.gettempdir()`` (uploads, job databases, session files), and a
    test that checks that a folder is left empty must not see another
    worker's files. Servers the tests start inherit it (TMPDIR). Removed when
    the worker ends. The one store outside the temporary folder gets its own
    copy per worker too (DATABASE_URL, below)."""
    import os
    import secrets

    os.environ.setdefault("FLASK_SECRET_KEY", secrets.token_hex())
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker is None:
        from tests.reaper import mark_this_run

        mark_this_run(config)
        return
    import os
    import tempfile

    folder = tempfile.mkdtemp(prefix=f"fsp-{worker}-")
    # Servers that drop root (nginx's workers, PostgreSQL) must enter it.
    os.chmod(folder, 0o755)
    os.environ["TMPDIR"] = folder
    tempfile.tempdir = folder
    config._fsp_tmpdir = folder
    # snippets/flask_sqlalchemy.py keeps its SQLite file in the app's instance
    # folder, shared by every worker: two workers seeding it at once collided
    # (UNIQUE constraint failed). Each worker gets its own, as the snippet
    # allows (DATABASE_URL).
    os.environ.setdefault(
        "DATABASE_URL", f"sqlite:///{folder}/flask_sqlalchemy_stock.sqlite3"
    )


def pytest_unconfigure(config):
    folder = getattr(config, "_fsp_tmpdir", None)
    if folder:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
