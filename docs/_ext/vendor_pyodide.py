"""Vendor Pyodide and the pinned wheels that the "Run" button installs.

Pyodide comes from its npm package (``pyodide``, licence MPL-2.0) at the
version pinned below, checked against the npm registry's sha512 integrity;
the seven packages come from PyPI through pip, at the versions of
tests/requirements.txt and checked against that lock's hashes (pip's
``--require-hashes``, then again here). Everything lands in a git-ignored
cache keyed by version (docs/_tryit/cache/), filled on the first build and
reused by every build after it: a warm build reads two small JSON files.

MarkupSafe publishes no pure-Python wheel: its sdist (hash-checked like the
rest) is repacked as a zip of its ``markupsafe`` package without the C
speed-up, which MarkupSafe falls back from by design (``_native``).

Run ``python docs/_ext/vendor_pyodide.py`` to fill the cache by hand; the
``tryit`` extension calls :func:`ensure` at the start of an HTML build.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / "docs" / "_tryit" / "cache"
LOCK = ROOT / "tests" / "requirements.txt"

PYODIDE_VERSION = "314.0.8"
PYODIDE_LICENSE = "MPL-2.0"
PYODIDE_INTEGRITY = (
    "sha512-74Wq1kXOC+CCEzAfxuRAO701nAcCMLjf8NrwvWpu8S41dVMXwXmLQ05dYB+F4e46AdnGo0o"
    "q7YHSVUpHsoarLQ=="
)
PYODIDE_TARBALL = f"https://registry.npmjs.org/pyodide/-/pyodide-{PYODIDE_VERSION}.tgz"
# What a page loads from the npm package: the ES module loader, the runtime,
# the standard library, and the lock file that loadPyodide reads first.
PYODIDE_FILES = [
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
    "package.json",
]
PACKAGES = [
    "flask",
    "werkzeug",
    "jinja2",
    "markupsafe",
    "itsdangerous",
    "blinker",
    "click",
]


def locked_requirements(lock: Path = LOCK) -> dict[str, tuple[str, str, list[str]]]:
    """name -> (version, the lock's whole entry, its sha256 hashes)."""
    text = lock.read_text()
    found = {}
    pattern = r"^([A-Za-z0-9_.-]+)==(\S+)((?:[ \t]*\\\n[ \t]+--hash=sha256:[0-9a-f]+)+)"
    for match in re.finditer(pattern, text, re.M):
        name = match.group(1).lower()
        if name in PACKAGES:
            hashes = re.findall(r"sha256:([0-9a-f]{64})", match.group(3))
            found[name] = (match.group(2), match.group(0), hashes)
    missing = set(PACKAGES) - set(found)
    if missing:
        raise RuntimeError(f"{lock} pins no {', '.join(sorted(missing))}")
    return found


def _pyodide_dir() -> Path:
    return CACHE / f"pyodide-{PYODIDE_VERSION}"


def _wheels_dir(locked) -> Path:
    key = hashlib.sha256(
        "".join(entry for _v, entry, _h in locked.values()).encode()
    ).hexdigest()[:12]
    return CACHE / f"wheels-{key}"


def _fetch_pyodide(target: Path) -> None:
    with urllib.request.urlopen(PYODIDE_TARBALL, timeout=300) as response:
        data = response.read()
    algo, _, expected = PYODIDE_INTEGRITY.partition("-")
    digest = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if digest != expected:
        raise RuntimeError(
            f"{PYODIDE_TARBALL}: integrity {digest}, expected {expected}"
        )
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for name in PYODIDE_FILES:
            member = tar.extractfile(f"package/{name}")
            (partial / name).write_bytes(member.read())
    (partial / "NOTICE.txt").write_text(
        f"Pyodide {PYODIDE_VERSION}, from the npm package pyodide "
        f"({PYODIDE_TARBALL}), licensed {PYODIDE_LICENSE}: "
        "https://github.com/pyodide/pyodide/blob/main/LICENSE\n"
    )
    partial.rename(target)


def _repack_sdist(sdist: Path, target: Path) -> None:
    """The pure-Python part of an sdist's src/<package>/ as a zip whose root
    is site-packages."""
    with tarfile.open(sdist) as tar, zipfile.ZipFile(target, "w") as out:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if member.isfile() and len(parts) > 3 and parts[1] == "src":
                rel = "/".join(parts[2:])
                if rel.endswith((".py", "py.typed")):
                    out.writestr(rel, tar.extractfile(member).read())


def _fetch_wheels(locked, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("\n".join(e for _v, e, _h in locked.values()) + "\n")
        binary = ",".join(name for name in PACKAGES if name != "markupsafe")
        subprocess.run(
            # --isolated: PyPI and the lock, not a machine's pip.conf.
            [sys.executable, "-m", "pip", "--isolated", "--disable-pip-version-check",
             "download", "--quiet", "--no-deps",
             "--require-hashes", "-r", str(requirements), "-d", tmp,
             "--no-binary", "markupsafe", "--only-binary", binary],
            check=True,
        )  # fmt: skip
        for name, (version, _entry, hashes) in locked.items():
            (path,) = [
                p
                for p in Path(tmp).iterdir()
                if p.name.lower().startswith(f"{name}-{version}")
            ]
            if hashlib.sha256(path.read_bytes()).hexdigest() not in hashes:
                raise RuntimeError(f"{path.name} does not match the lock's hashes")
            if path.name.endswith(".whl"):
                (partial / path.name).write_bytes(path.read_bytes())
            else:
                _repack_sdist(path, partial / f"{name}-{version}-pure.zip")
    partial.rename(target)


def ensure() -> dict:
    """Fill the cache if needed; return the manifest: versions, files, sizes."""
    locked = locked_requirements()
    pyodide, wheels = _pyodide_dir(), _wheels_dir(locked)
    if not pyodide.is_dir():
        _fetch_pyodide(pyodide)
    if not wheels.is_dir():
        _fetch_wheels(locked, wheels)
    return {
        "pyodide_version": PYODIDE_VERSION,
        "pyodide_license": PYODIDE_LICENSE,
        "pyodide_dir": pyodide,
        "wheels_dir": wheels,
        "packages": {name: version for name, (version, _e, _h) in locked.items()},
        "pyodide_files": sorted(p.name for p in pyodide.iterdir()),
        "wheels": sorted(p.name for p in wheels.iterdir()),
    }


if __name__ == "__main__":
    manifest = ensure()
    print(json.dumps(manifest, default=str, indent=2))
