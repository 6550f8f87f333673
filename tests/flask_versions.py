"""Run a script against an older Flask release, to prove a version boundary
on both sides.

The release is fetched on its own from the package index into a temporary
folder and put in front of the locked Werkzeug, Jinja and friends. Offline it
skips with a reason; under ``FSP_STRICT=1`` (CI) it fails.

    result = run_with_flask("3.1.1", tmp_path, SCRIPT)  # what SCRIPT printed

or, fetching each release once per test process, with the repository on the
path and extra environment (the locked Flask runs without a fetch)::

    result = run_on_flask("3.1.1", SCRIPT, {"DATABASE_URL": url})
"""

import ast
import atexit
import importlib.metadata
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.servers import ROOT, STRICT


def run_with_flask(release, folder, script):
    """Run ``script`` with flask==``release``; return the literal it prints last."""
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--only-binary", ":all:", "--target", str(folder), f"flask=={release}"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    if install.returncode != 0:
        reason = f"could not fetch flask=={release}: {install.stderr.strip()[-300:]}"
        if STRICT:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    env = {**os.environ, "PYTHONPATH": str(folder)}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


# --- extensions pages: one fetch per test process, the locked release too ----
_FETCHED_FLASK: dict[str, Path] = {}


def pip_target(prefix: str, *requirements: str) -> Path:
    """``requirements`` installed (no dependencies, wheels only) into a
    temporary folder that goes when the process exits. Without the index, or
    with a wheel that will not install: skip (fail under FSP_STRICT=1)."""
    folder = tempfile.TemporaryDirectory(prefix=prefix)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--disable-pip-version-check", "--only-binary", ":all:",
         "--target", folder.name, *requirements],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    if install.returncode != 0:
        folder.cleanup()
        reason = f"could not install {requirements}: {install.stderr.strip()[-300:]}"
        if STRICT:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    atexit.register(folder.cleanup)
    return Path(folder.name)


def fetched_flask(release: str) -> Path:
    """Fetch ``flask==release`` from the package index into a temporary folder,
    once per test process (the folder goes at exit). Put it first on the
    ``PYTHONPATH`` of a subprocess to run that Flask with the locked Werkzeug,
    Jinja and extensions. Without the index: skip (fail under FSP_STRICT=1)."""
    if release in _FETCHED_FLASK:
        return _FETCHED_FLASK[release]
    folder = pip_target(f"flask-{release}-", f"flask=={release}")
    _FETCHED_FLASK[release] = folder
    return _FETCHED_FLASK[release]


def run_on_flask(release: str, code: str, env: dict | None = None, timeout=120):
    """Run ``code`` in a new interpreter on Flask ``release`` (the locked Flask
    when ``release`` is the installed version, else :func:`fetched_flask`) and
    return ``ast.literal_eval`` of the last line it prints."""
    path = [str(ROOT)]
    if release != importlib.metadata.version("flask"):
        path.insert(0, str(fetched_flask(release)))
    full_env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(path)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=full_env,
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    if result.returncode != 0:
        raise AssertionError(f"Flask {release} run failed:\n{result.stderr[-3000:]}")
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])
