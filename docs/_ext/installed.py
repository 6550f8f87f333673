"""The ``:installed:`` role: a package's name and the version the full lock
pins (``:installed:`Flask``` -> "Flask 3.1.3"), which is what the tests ran
against; the build fails when the installed version differs.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: The full lock: what ``make test`` installs and the tests run against. The
#: site's own lock (requirements-docs.txt) is a subset, so ``make html`` alone
#: does not install most of the packages a page names.
LOCK = Path("tests") / "requirements.txt"
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(lock: Path) -> dict[str, tuple[str, set[str]]]:
    """``{canonical name: (version, hashes)}`` for every ``name==version``
    line of a lock and the ``--hash`` lines under it (none: an empty set)."""
    pins, name = {}, None
    if not lock.is_file():
        return pins
    for line in lock.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            name = canonical(match[1])
            pins[name] = (match[2], set())
        elif name and (found := HASH.search(line)):
            pins[name][1].add(found[1])
    return pins


def installed_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """:installed:`Flask-SQLAlchemy` -> "Flask-SQLAlchemy 3.1.1": the version
    the full lock pins, which is what the tests ran against. Where the
    building environment has the package installed too (after ``make test``),
    the installed version must be the pinned one: a package missing from the
    lock or a different installed version is a warning, so ``-W`` fails."""
    env = inliner.document.settings.env
    lock = Path(env.srcdir).parent / LOCK
    pin, _hashes = read_lock(lock).get(canonical(text), (None, None))
    if pin is None:
        logger.warning(
            f":installed:`{text}`: not pinned in {LOCK}", location=(env.docname, lineno)
        )
        return [nodes.Text(text)], []
    try:
        installed = metadata.version(text)
    except metadata.PackageNotFoundError:
        installed = pin  # make html alone: the lock is what make test installs
    if installed != pin:
        logger.warning(
            f":installed:`{text}`: {installed} is installed, {LOCK} pins {pin}",
            location=(env.docname, lineno),
        )
    shown = f"{text} {pin}"
    return [nodes.literal(shown, shown, classes=["installed"])], []


def setup(app):
    app.add_role("installed", installed_role)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
