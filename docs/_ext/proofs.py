"""Proofs one click away: the ``:test:`` role.

``:test:`tests/state/test_sessions.py::test_generator_change_is_lost``` (or
the short form ``:test:`test_generator_change_is_lost```, looked up in the
page's own modules: ``tests/<part>/test_<page>.py``, ``..._live.py``,
``..._browser.py``) renders as a small mark (✓) linked to the test's source
on the site, with the full id on hover: a proof one click away that does not
crowd the sentence. A citation in parentheses, ``(:test:`a`, :test:`b`)``,
loses its parentheses and separators (``✓✓``). ``:testname:`` takes the same
targets and shows the test's name instead (the Myths page's "Settled by"
lines). A module or test that does not exist is a warning, so
``sphinx-build -W`` fails.

This extension also loads the other two jobs, each in a module of its own:
``installed`` (the ``:installed:`` role) and ``proof_pages`` (the generated
pages the marks link to).
"""

from __future__ import annotations

import ast
import contextlib
import pickle
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

ROLE = re.compile(r":test(?:name)?:`([^`]+)`")


@dataclass
class Test:
    module: str  # "tests/state/test_sessions.py"
    name: str  # "test_x" or "Class::test_x"
    start: int
    end: int
    doc: str
    cited_by: set[str] = field(default_factory=set)

    @property
    def label(self) -> str:
        return "proof-" + slug(self.module) + "-" + slug(self.name)


def slug(text: str) -> str:
    text = text.removeprefix("tests/").removesuffix(".py")
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def collect_tests(root: Path) -> dict[str, dict[str, Test]]:
    """Every test function and test method of every module under tests/.
    A module is parsed again only when it changed since the last build
    (``_build/.proofs-tests.pickle``): a rebuild after one edit reads none."""
    cache_file = root / "_build" / ".proofs-tests.pickle"
    try:
        cache = pickle.loads(cache_file.read_bytes())
    except (OSError, pickle.PickleError, EOFError, AttributeError):
        cache = {}
    modules: dict[str, dict[str, Test]] = {}
    fresh = {}
    for path in sorted((root / "tests").rglob("test_*.py")):
        rel = path.relative_to(root).as_posix()
        stamp = path.stat().st_mtime_ns
        if rel in cache and cache[rel][0] == stamp:
            tests = {
                name: replace(test, cited_by=set())
                for name, test in cache[rel][1].items()
            }
        else:
            tests = parse_tests(path, rel)
        modules[rel] = tests
        fresh[rel] = (stamp, tests)
    with contextlib.suppress(OSError):
        cache_file.parent.mkdir(exist_ok=True)
        cache_file.write_bytes(pickle.dumps(fresh))
    return modules


def parse_tests(path: Path, rel: str) -> dict[str, Test]:
    tree = ast.parse(path.read_text(), filename=rel)
    tests: dict[str, Test] = {}

    def add(node, prefix=""):
        start = min([d.lineno for d in node.decorator_list] + [node.lineno])
        name = prefix + node.name
        doc = ast.get_docstring(node) or ""
        tests[name] = Test(rel, name, start, node.end_lineno, doc)

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.name.startswith("test"):
                add(node)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(
                    item, ast.FunctionDef | ast.AsyncFunctionDef
                ) and item.name.startswith("test"):
                    add(item, node.name + "::")
    return tests


def proof_docname(rel: str) -> str:
    """tests/state/test_sessions.py -> state/test_sessions (under proof/)."""
    return rel.removeprefix("tests/").removesuffix(".py")


def own_modules(docname: str) -> list[str]:
    """The test modules named for a page: state/sessions ->
    tests/state/test_sessions.py, ..._live.py, ..._browser.py."""
    part, _, page = docname.rpartition("/")
    folder = f"tests/{part}/" if part else "tests/"
    return [f"{folder}test_{page}{suffix}.py" for suffix in ("", "_live", "_browser")]


def resolve(target: str, docname: str, modules) -> tuple[Test | None, str, str]:
    """(test, shown text, error) for a role target."""
    shown = target.rsplit("::", 1)[-1]
    bare = re.sub(r"\[.*\]$", "", target)  # a parametrized id names its function
    if "::" in bare and bare.split("::", 1)[0].endswith(".py"):
        module, name = bare.split("::", 1)
        if module not in modules:
            return None, shown, f"no test module {module}"
        if name not in modules[module]:
            return None, shown, f"no test {name} in {module}"
        return modules[module][name], shown, ""
    found = [
        modules[m][bare] for m in own_modules(docname) if bare in modules.get(m, {})
    ]
    if len(found) == 1:
        return found[0], shown, ""
    where = ", ".join(own_modules(docname))
    if not found:
        return None, shown, f"no test {bare} in this page's modules ({where})"
    return None, shown, f"{bare} is in more than one of {where}: give the module"


def proof_label(name: str, shown: str) -> nodes.Node:
    """The link's text: a mark for :test:, the test's name for :testname:."""
    if name == "testname":
        return nodes.literal(shown, shown, classes=["proof"])
    return nodes.inline(MARK, MARK, classes=["proof-mark"])


MARK = "\u2713"  # CHECK MARK


def test_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    env = inliner.document.settings.env
    modules = env.app.proofs_modules
    if text.endswith(".py"):  # a whole module: its proof page
        if text not in modules:
            logger.warning(f":test:`{text}`: no test module {text}",
                           location=(env.docname, lineno), type="proofs")  # fmt: skip
            return [nodes.literal(text, text)], []
        ref = proof_ref(doc="proof/" + proof_docname(text), label="", title=text)
        ref += proof_label(name, text)
        return [ref], []
    test, shown, error = resolve(text, env.docname, modules)
    if test is None:
        logger.warning(
            f":test:`{text}`: {error}", location=(env.docname, lineno), type="proofs"
        )
        return [nodes.literal(shown, shown, classes=["proof"])], []
    title = f"{test.module}::{text.rsplit('::', 1)[-1]}"
    ref = proof_ref(doc="proof/" + proof_docname(test.module), label=test.label,
                    title=title)  # fmt: skip
    ref += proof_label(name, shown)
    return [ref], []


SEPARATOR = re.compile(r"^\s*(?:,|;|and|, and)?\s*$")


def is_mark(node) -> bool:
    return isinstance(node, proof_ref) and any(
        "proof-mark" in child.get("classes", []) for child in node.children
    )


def tidy_marks(app, doctree) -> None:
    """``word (✓, ✓).`` reads ``word✓✓.``: a run of marks in parentheses
    loses the parentheses and what separates the marks."""
    for parent in {ref.parent for ref in doctree.findall(proof_ref) if is_mark(ref)}:
        children = list(parent.children)
        i = 0
        while i < len(children):
            before = children[i - 1] if i else None
            if not (is_mark(children[i]) and isinstance(before, nodes.Text)
                    and before.astext().rstrip(" \n").endswith("(")):  # fmt: skip
                i += 1
                continue
            j = i
            while (j + 2 < len(children) and isinstance(children[j + 1], nodes.Text)
                   and SEPARATOR.match(children[j + 1].astext())
                   and is_mark(children[j + 2])):  # fmt: skip
                j += 2
            after = children[j + 1] if j + 1 < len(children) else None
            if not (isinstance(after, nodes.Text) and after.astext().startswith(")")):
                i = j + 1
                continue
            text = before.astext().rstrip(" \n")
            parent.replace(before, nodes.Text(text[:-1].rstrip(" \n")))
            parent.replace(after, nodes.Text(after.astext()[1:]))
            for k in range(i + 1, j + 1, 2):
                parent.remove(children[k])
            children = list(parent.children)
            i += (j - i) // 2 + 1  # past the marks, now side by side


class proof_ref(nodes.Inline, nodes.Element):
    """A link to a test, made a reference once the pages are resolved."""


def resolve_proofs(app, doctree, docname) -> None:
    """Turn each proof_ref into a link to its test's anchor, with the full id
    on hover (the std domain would swap the ``code`` text for plain text)."""
    labels = app.env.domains.standard_domain.labels
    for ref in list(doctree.findall(proof_ref)):
        uri = app.builder.get_relative_uri(docname, ref["doc"])
        if ref["label"]:
            _, anchor, _ = labels[ref["label"]]
            uri += "#" + anchor
        link = nodes.reference("", "", internal=True, refuri=uri, reftitle=ref["title"])
        link["classes"].append("proof-link")
        link += ref.children
        ref.replace_self(link)


def setup(app):
    app.add_config_value("proofs_repo_url", "", "html")
    app.add_config_value("proofs_repo_branch", "main", "html")
    app.add_role("test", test_role)
    app.add_role("testname", test_role)
    app.connect("doctree-read", tidy_marks)
    app.add_node(proof_ref)
    app.connect("doctree-resolved", resolve_proofs)
    app.setup_extension("installed")
    app.setup_extension("proof_pages")
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
