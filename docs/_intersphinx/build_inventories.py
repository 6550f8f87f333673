"""Rebuild the offline intersphinx inventories in this folder.

Run by ``make inventories``. No machine here reaches the projects' doc sites,
so the inventories are built locally and committed:

* flask, werkzeug, jinja: each project's ``docs/`` from its PyPI sdist (the
  exact version pinned in requirements-docs.txt), built with Sphinx's
  ``dirhtml`` builder because the official sites use dirhtml URLs. Only
  autodoc is enabled: the inventory needs object names and labels, not the
  Pallets theme.
* python: ``objects.inv`` from Debian's ``python3.11-doc`` package.
"""

import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
PALLETS = {"flask": "Flask", "werkzeug": "Werkzeug", "jinja2": "Jinja"}
PYTHON_INV = Path("/usr/share/doc/python3.11/html/objects.inv")


def build_pallets(work: Path, dist: str, project: str) -> None:
    pinned = version(dist)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"{dist}=={pinned}",
            "-d",
            str(work),
        ],
        check=True,
    )
    with tarfile.open(next(work.glob(f"{dist}-{pinned}.tar.gz"))) as sdist:
        sdist.extractall(work, filter="data")
    docs = work / f"{dist}-{pinned}" / "docs"
    out = work / f"{dist}-html"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-b",
            "dirhtml",
            "-q",
            "-C",
            "-D",
            "extensions=sphinx.ext.autodoc",
            "-D",
            "default_role=code",
            "-D",
            f"project={project}",
            "-D",
            f"version={pinned}",
            "-D",
            f"release={pinned}",
            str(docs),
            str(out),
        ],
        check=True,
        stderr=subprocess.DEVNULL,  # unknown Pallets directives: irrelevant here
    )
    name = "jinja" if dist == "jinja2" else dist
    shutil.copy(out / "objects.inv", HERE / f"{name}.inv")
    print(f"{name}.inv  <- {dist} {pinned} sdist")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for dist, project in PALLETS.items():
            build_pallets(Path(tmp), dist, project)
    if not PYTHON_INV.exists():
        sys.exit(f"{PYTHON_INV} missing: apt-get install python3.11-doc")
    shutil.copy(PYTHON_INV, HERE / "python.inv")
    print(f"python.inv <- {PYTHON_INV}")


if __name__ == "__main__":
    main()
