"""The live and browser tiers: which system binary each needs, how to install
it, and which snippets only it can cover.

``make test`` installs the binaries itself where it can (Debian or Ubuntu, as
root or with sudo that needs no password: ``.ci/system-packages``). Where it
cannot, the tests that need a missing binary skip with a reason, the run ends
with one line per missing tier saying how to enable it, and the coverage gate
leaves out only the snippets listed here for that tier (every other snippet
must still be covered 100%). Under ``FSP_STRICT=1`` (CI) a missing binary is
a failure, and nothing is left out.

``FSP_WITHOUT=nginx,redis-server`` makes the tests act as if those binaries
were missing, so the newcomer's path can be tried on a full machine.

    python -m tests.tiers coveragerc PATH   # write the coverage config to use
    python -m tests.tiers missing           # one line per missing tier
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# binary -> (Debian package, candidate paths)
TIERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "nginx": ("nginx", ("/usr/sbin/nginx",)),
    "chromium": ("chromium", ("/usr/bin/chromium",)),
    "redis-server": ("redis-server", ()),
    "memcached": ("memcached", ("/usr/bin/memcached",)),
    "postgres": ("postgresql", ("/usr/lib/postgresql/*/bin/postgres",)),
    "openssl": ("openssl", ("/usr/bin/openssl",)),
}
# A snippet that imports one of these (itself, or through another snippet it
# imports, even inside a function) talks to that store: without the binary
# no test can run its lines, so the coverage gate leaves it out.
STORE_CLIENTS = {
    "redis": "redis-server",
    "rq": "redis-server",
    "celery": "redis-server",
    "pymemcache": "memcached",
}


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def stores_needed(path: Path, seen: frozenset = frozenset()) -> set[str]:
    """The tiers a snippet's code needs, from the store clients it imports."""
    needed = set()
    for name in imported(path):
        top = name.split(".")[0]
        if top in STORE_CLIENTS:
            needed.add(STORE_CLIENTS[top])
        elif top == "snippets" and name not in seen:
            other = ROOT / (name.replace(".", "/") + ".py")
            if other.exists():
                needed |= stores_needed(other, seen | {name})
    return needed


def only_reached_by(tier: str) -> list[str]:
    """The snippets (as paths from the root) that need ``tier``."""
    return [
        f"snippets/{path.name}"
        for path in sorted((ROOT / "snippets").glob("*.py"))
        if tier in stores_needed(path)
    ]


def pretended_missing() -> set[str]:
    return {name for name in os.environ.get("FSP_WITHOUT", "").split(",") if name}


def find(name: str, *candidates: str) -> str | None:
    """The path of a system binary, or None (also when FSP_WITHOUT names it)."""
    if name in pretended_missing() or "all" in pretended_missing():
        return None
    for candidate in (name, *candidates):
        # A candidate may be a glob: Debian puts PostgreSQL's server under
        # /usr/lib/postgresql/<major>/bin.
        for path in sorted(glob.glob(candidate), reverse=True) or [candidate]:
            found = shutil.which(path) or (path if os.access(path, os.X_OK) else None)
            if found:
                return found
    return None


def missing() -> list[str]:
    return [name for name, (_, paths) in TIERS.items() if not find(name, *paths)]


def enable_line(name: str) -> str:
    package = TIERS[name][0] if name in TIERS else name
    return (
        f"tier {name}: skipped, {name} is not installed; enable it with "
        f"`sudo apt-get install {package}` (or run make test as root on Debian)"
    )


def coveragerc(path: Path) -> None:
    """The project's coverage settings, less the snippets of missing tiers."""
    strict = os.environ.get("FSP_STRICT") == "1"
    omit = [] if strict else [s for name in missing() for s in only_reached_by(name)]
    lines = [
        "[run]",
        "source = snippets",
        "branch = false",
        "patch = subprocess",
        "parallel = true",
        f"data_file = {ROOT / '.coverage'}",
        "[report]",
        "fail_under = 100",
        "show_missing = true",
        "skip_covered = true",
    ]
    if omit:
        lines += ["omit ="] + [f"    {ROOT / s}" for s in omit]
    path.write_text("\n".join(lines) + "\n")
    for name in [] if strict else missing():
        left_out = ", ".join(only_reached_by(name)) or "nothing"
        print(f"{enable_line(name)}; left out of the coverage gate: {left_out}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["coveragerc"]:
        coveragerc(Path(sys.argv[2]))
    elif sys.argv[1:2] == ["missing"]:
        for name in missing():
            print(enable_line(name))
    else:
        sys.exit(__doc__)
