"""The next Flask and Werkzeug, before they ship: the pin, and a way to run
code on them.

``NEXT`` is what ``pip install --target`` gets, the same mechanism as
tests/flask_versions.py uses for older releases: today the two wheels in
tests/wheels, built from Flask's and Werkzeug's main branches at a pinned
commit (tests/wheels/README.md names the commits and how to refresh them).
When Flask 3.2 is on PyPI, the pin becomes one line:
``NEXT = ("flask==3.2.0", "werkzeug==3.2.0")``.

    result = run_on_next(SCRIPT)  # what SCRIPT printed last, on the next Flask

The folder is installed once per test process and removed at exit. Without
the wheels or the index it skips with a reason (fails under FSP_STRICT=1).
"""

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.flask_versions import pip_target
from tests.servers import ROOT

WHEELS = ROOT / "tests" / "wheels"
NEXT = tuple(str(wheel) for wheel in sorted(WHEELS.glob("*.whl")))

_TARGET: list[Path] = []


def next_target() -> Path:
    """Install ``NEXT`` (no dependencies: the locked Jinja, Click and friends
    serve it) into a temporary folder, once per process; return the folder."""
    if _TARGET:
        return _TARGET[0]
    _TARGET.append(pip_target("flask-next-", *NEXT))
    return _TARGET[0]


def next_env(env: dict | None = None) -> dict:
    """The environment of a subprocess that imports the next Flask and
    Werkzeug first, then the repository, then the locked packages. Coverage's
    subprocess settings are left out: the tier measures nothing."""
    path = os.pathsep.join([str(next_target()), str(ROOT)])
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("COV_CORE_", "COVERAGE_"))
    }
    return {**base, **(env or {}), "PYTHONPATH": path}


def run_on_next(code: str, env: dict | None = None, timeout=120):
    """Run ``code`` in a new interpreter on ``NEXT`` and return
    ``ast.literal_eval`` of the last line it prints."""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=next_env(env),
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"run on {NEXT} failed:\n{result.stderr[-3000:]}")
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])
