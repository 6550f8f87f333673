"""Every number a view reads from a request goes through one helper,
``snippets.checks.whole_number``, and the bad-numbers tier
(test_bad_numbers.py) asks each of them for bad values.

Read from the snippets' code, so nothing is registered by hand: a view that
parses a number itself (``int(request.args[...])``, ``type=int``, ``int()``
of a value taken from the request) fails here, and a ``whole_number`` call
that the bad-numbers tier does not send bad values to fails too.
"""

from __future__ import annotations

import ast

import pytest

from tests import snippet_index
from tests.site_checks import test_bad_numbers
from tests.site_checks.test_bad_numbers import CASES, OUT_OF_PROCESS

WHERE = {"headers": "header", "args": "query", "form": "form"}


def from_request(node: ast.AST, tainted: set[str]) -> bool:
    """Whether an expression reads the request (``request.x``), or a name
    assigned from it earlier in the same function."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and sub.id in {"request", *tainted}:
            return True
    return False


def hand_parsed(tree: ast.Module) -> list[str]:
    """``int()``/``float()`` of request data and ``type=int`` look-ups."""
    found = []
    for func in ast.walk(tree):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        tainted: set[str] = set()
        for node in ast.walk(func):
            if isinstance(node, ast.Assign) and from_request(node.value, tainted):
                tainted |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(func):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None)
            if name in {"int", "float"} and any(
                from_request(arg, tainted) for arg in node.args
            ):
                found.append(f"line {node.lineno}: {name}() of request data")
            for keyword in node.keywords:
                if keyword.arg == "type" and getattr(keyword.value, "id", "") in {
                    "int",
                    "float",
                }:
                    found.append(f"line {node.lineno}: type={keyword.value.id}")
    return found


def whole_number_reads(name: str) -> list[tuple[str, str]]:
    """(parameter, where) for every ``whole_number("literal", ...)`` call."""
    reads = []
    for node in ast.walk(snippet_index.tree(name)):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "whole_number"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            source = next(
                (k.value.value for k in node.keywords if k.arg == "source"), "args"
            )
            reads.append((node.args[0].value, WHERE[source]))
    return reads


def recipe_lines(name: str) -> set[int]:
    """The lines of the module's ``# [recipe]`` region: a recipe stands alone
    (a reader pastes it into a file), so it cannot import the helper."""
    lines = (snippet_index.SNIPPETS / f"{name}.py").read_text().splitlines()
    inside, found = False, set()
    for number, line in enumerate(lines, start=1):
        if line.strip() == "# [recipe]":
            inside = True
        elif line.strip() == "# [recipe-end]":
            inside = False
        elif inside:
            found.add(number)
    return found


@pytest.mark.parametrize("name", [n for n in snippet_index.names() if n != "checks"])
def test_no_view_parses_a_number_by_hand(name):
    """Outside its recipe, a snippet reads numbers with whole_number."""
    recipe = recipe_lines(name)
    found = [
        finding
        for finding in hand_parsed(snippet_index.tree(name))
        if int(finding.split(":")[0].removeprefix("line ")) not in recipe
    ]
    assert found == []


@pytest.mark.parametrize("name", snippet_index.names())
def test_every_number_a_view_reads_gets_bad_values(name):
    if name in OUT_OF_PROCESS:  # asked there, every route of it
        assert callable(getattr(test_bad_numbers, OUT_OF_PROCESS[name]))
        return
    asked = {(case.parameter, case.where) for case in CASES if case.snippet == name}
    assert set(whole_number_reads(name)) <= asked
