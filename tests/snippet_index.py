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
import re
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


def app_module(name: str) -> str | None:
    """The snippet whose ``app`` a module's routes join: itself if it
    defines one, else the one it imports ``app`` from."""
    if defines_app(name):
        return name
    for node in tree(name).body:
        if (
            isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("snippets.")
            and any(alias.name == "app" and not alias.asname for alias in node.names)
        ):
            return node.module.split(".", 1)[1]
    return None


ON_PURPOSE = re.compile(r"#.*\bon purpose\b(.*)", re.I)


def on_purpose() -> dict[tuple[str, str], str]:
    """Routes whose page shows a failure: the comment right above the route
    (``# Fails on purpose: ...``) says so, next to the code it is about.
    {(app's snippet, rule): the comment}."""
    found = {}
    for name in names():
        owner = app_module(name)
        lines = (SNIPPETS / f"{name}.py").read_text().splitlines()
        for node in ast.walk(tree(name)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            rules = [
                d.args[0].value
                for d in node.decorator_list
                if isinstance(d, ast.Call)
                and getattr(d.func, "attr", "") in ROUTE_METHODS
                and d.args
                and isinstance(d.args[0], ast.Constant)
            ]
            if not rules:
                continue
            above = min(d.lineno for d in node.decorator_list) - 2
            while above >= 0 and lines[above].strip().startswith("# ["):
                above -= 1  # a region marker
            if above >= 0 and (match := ON_PURPOSE.search(lines[above])):
                for rule in rules:
                    found[(owner, rule)] = match.group(0).lstrip("# ")
    return found


ROUTE_METHODS = {"route", "get", "post", "put", "patch", "delete"}
