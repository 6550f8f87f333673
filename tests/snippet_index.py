"""What the site checks know about each snippet, read from its code: nothing
to register by hand when a pattern is added.

* :func:`apps`: the modules that define ``app`` at module level (so
  ``flask --app snippets.<name> run`` serves them); the others (the shared
  ``checks``, a store module another snippet imports) are not apps.
* :func:`cli`: the command that serves it: ``quart`` for a Quart app.
* :func:`stores`: the stores its code talks to (tests/tiers.py).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from tests import tiers

ROOT = Path(__file__).resolve().parent.parent
SNIPPETS = ROOT / "snippets"


@cache
def tree(name: str) -> ast.Module:
    return ast.parse((SNIPPETS / f"{name}.py").read_text())


def names() -> list[str]:
    return sorted(p.stem for p in SNIPPETS.glob("*.py") if p.stem != "__init__")


def defines_app(name: str) -> bool:
    return any(
        isinstance(node, ast.Assign | ast.AnnAssign)
        and any(
            isinstance(target, ast.Name) and target.id == "app"
            for target in (
                node.targets if isinstance(node, ast.Assign) else [node.target]
            )
        )
        for node in tree(name).body
    )


def apps() -> list[str]:
    return [name for name in names() if defines_app(name)]


def cli(name: str) -> str:
    """``quart`` for a module whose ``app`` is ``Quart(...)``, else ``flask``."""
    for node in tree(name).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if getattr(func, "id", getattr(func, "attr", "")) == "Quart":
                return "quart"
    return "flask"


def stores(name: str) -> set[str]:
    return tiers.stores_needed(SNIPPETS / f"{name}.py")
