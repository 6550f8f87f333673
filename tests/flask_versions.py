"""Run a script against an older Flask release, to prove a version boundary
on both sides.

The release is fetched on its own from the package index into a temporary
folder and put in front of the locked Werkzeug, Jinja and friends. Offline it
skips with a reason; under ``FSP_STRICT=1`` (CI) it fails.

    result = run_with_flask("3.1.1", tmp_path, SCRIPT)  # what SCRIPT printed
"""

import ast
import os
import subprocess
import sys

import pytest

from tests.servers import STRICT


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
