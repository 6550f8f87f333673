"""Proofs one click away: the ``:test:`` role, its generated pages, and file
captions that link to the whole file.

``:test:`tests/state/test_sessions.py::test_generator_change_is_lost``` (or
the short form ``:test:`test_generator_change_is_lost```, looked up in the
page's own modules: ``tests/<part>/test_<page>.py``, ``..._live.py``,
``..._browser.py``) renders as a small mark (✓) linked to the test's source
on the site, with the full id on hover: a proof one click away that does not
crowd the sentence. A citation in parentheses, ``(:test:`a`, :test:`b`)``,
loses its parentheses and separators (``✓✓``). ``:testname:`` takes the same
targets and shows the test's name instead (the Myths page's "Settled by"
lines). A module or test that does not exist is a
warning, so ``sphinx-build -W`` fails.

At ``builder-inited`` the extension writes, only where the text changed:

* ``docs/proof/<part>/<module>.rst``: one page per test module, each test
  with its own anchor, its docstring, its code and the pages that cite it;
* ``docs/code/<path>.rst``: every snippet and template, whole, and the test
  files a page includes or names as the place of its launchers and fixtures
  (a test module's own proof page shows its tests one by one).

Both folders are generated (git ignores them); Sybil, the integrity test and
sphinx-lint skip them. With ``proofs_repo_url`` set (conf.py reads
``FSP_REPO_URL``), each generated page also links to the file in the
repository.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

GENERATED = ("proof", "code")
ROLE = re.compile(r":test(?:name)?:`([^`]+)`")
SNIPPET_SUFFIXES = {".py", ".html", ".txt", ".j2", ".jinja"}


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
    """Every test function and test method of every module under tests/."""
    modules: dict[str, dict[str, Test]] = {}
    for path in sorted((root / "tests").rglob("test_*.py")):
        rel = path.relative_to(root).as_posix()
        tree = ast.parse(path.read_text(), filename=rel)
        tests: dict[str, Test] = {}

        def add(node, prefix=""):
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            name = prefix + node.name
            doc = ast.get_docstring(node) or ""
            tests[name] = Test(rel, name, start, node.end_lineno, doc)  # noqa: B023

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
        modules[rel] = tests
    return modules


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


#: The full lock: what ``make test`` installs and the tests run against. The
#: site's own lock (requirements-docs.txt) is a subset, so ``make html`` alone
#: does not install most of the packages a page names.
LOCK = Path("tests") / "requirements.txt"
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(lock: Path) -> dict[str, tuple[str, set[str]]]:
    """``{canonical name: (version, hashes)}`` for every ``name==version``
    line of a lock and the ``--hash`` lines under it (none: an empty set)."""
    pins, name = {}, None
    if not lock.is_file():
        return pins
    for line in lock.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            name = canonical(match[1])
            pins[name] = (match[2], set())
        elif name and (found := HASH.search(line)):
            pins[name][1].add(found[1])
    return pins


def installed_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """:installed:`Flask-SQLAlchemy` -> "Flask-SQLAlchemy 3.1.1": the version
    the full lock pins, which is what the tests ran against. Where the
    building environment has the package installed too (after ``make test``),
    the installed version must be the pinned one: a package missing from the
    lock or a different installed version is a warning, so ``-W`` fails."""
    env = inliner.document.settings.env
    lock = Path(env.srcdir).parent / LOCK
    pin, _hashes = read_lock(lock).get(canonical(text), (None, None))
    if pin is None:
        logger.warning(
            f":installed:`{text}`: not pinned in {LOCK}", location=(env.docname, lineno)
        )
        return [nodes.Text(text)], []
    try:
        installed = metadata.version(text)
    except metadata.PackageNotFoundError:
        installed = pin  # make html alone: the lock is what make test installs
    if installed != pin:
        logger.warning(
            f":installed:`{text}`: {installed} is installed, {LOCK} pins {pin}",
            location=(env.docname, lineno),
        )
    shown = f"{text} {pin}"
    return [nodes.literal(shown, shown, classes=["installed"])], []


# -- generated pages -----------------------------------------------------------


def rst_text(text: str) -> str:
    """A docstring as rst: ``literals`` kept, every other markup char escaped."""
    out = []
    for i, part in enumerate(re.split(r"(``[^`]+``)", text)):
        if i % 2:
            out.append(part)
        else:
            out.append(re.sub(r"([\\`*_|\[\]<>:])", r"\\\1", part))
    return "".join(out)


def heading(text: str, char: str) -> str:
    return f"{text}\n{char * len(text)}\n"


def repo_link(app, rel: str) -> str:
    base = app.config.proofs_repo_url.rstrip("/")
    if not base:
        return ""
    branch = app.config.proofs_repo_branch
    return f"`{rel} in the repository <{base}/blob/{branch}/{rel}>`__\n\n"


def language(path: Path) -> str:
    return {".py": "python", ".html": "html+jinja"}.get(path.suffix, "text")


def code_page(app, root: Path, path: Path) -> str:
    rel = path.relative_to(root).as_posix()
    text = [":orphan:\n", heading(rel, "="), repo_link(app, rel)]
    if rel.startswith("tests/test_") or "/test_" in rel:
        text.append(f"The tests one by one, with the pages that cite them: "
                    f":doc:`/proof/{proof_docname(rel)}`.\n\n")  # fmt: skip
    text.append(
        f".. literalinclude:: /../{rel}\n   :language: {language(path)}\n"
        f"   :caption: {rel}\n"
    )
    return "\n".join(text)


def proof_docname(rel: str) -> str:
    return rel.removeprefix("tests/").removesuffix(".py")


def proof_page(app, rel: str, tests: dict[str, Test], whole: bool) -> str:
    lines = [":orphan:\n", heading(rel, "="), repo_link(app, rel)]
    lines.append("Every test in this module, with the pages that cite it.")
    if whole:
        lines.append(f" The whole file: :doc:`/code/{rel.removesuffix('.py')}`.")
    lines.append("\n\n")
    if not tests:
        lines.append("This module has no tests of its own.\n")
    for test in tests.values():
        lines.append(f".. _{test.label}:\n")
        lines.append(heading(test.name.replace("::", "."), "-"))
        if test.doc:
            lines.append(rst_text(test.doc) + "\n")
        if test.cited_by:
            cites = ", ".join(f":doc:`/{d}`" for d in sorted(test.cited_by))
            lines.append(f"Cited by {cites}.\n")
        else:
            lines.append("No page cites this test.\n")
        lines.append(
            f".. literalinclude:: /../{rel}\n   :language: python\n"
            f"   :caption: {rel}, lines {test.start} to {test.end}\n"
            f"   :lines: {test.start}-{test.end}\n   :lineno-match:\n"
        )
    return "\n".join(lines)


def index_page(modules) -> str:
    lines = [":orphan:\n\n", heading("Proofs", "=")]
    lines.append(
        "Every test module, laid out like the site: ``tests/<part>/test_<page>.py`` "
        "proves a page in process, ``..._live.py`` against real servers, proxies, "
        "stores and workers, ``..._browser.py`` in Chromium. Each test shows the "
        "pages that cite it.\n\n"
        ".. toctree::\n   :maxdepth: 1\n\n"
    )
    lines += [f"   {proof_docname(rel)}\n" for rel in modules]
    return "".join(lines)


def write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def citations(srcdir: Path):
    """(docname, target) for every :test: role in the hand-written pages."""
    for path in sorted(srcdir.rglob("*.rst")):
        rel = path.relative_to(srcdir)
        if rel.parts[0] in GENERATED or rel.parts[0].startswith("_"):
            continue
        docname = rel.with_suffix("").as_posix()
        for match in ROLE.finditer(path.read_text()):
            yield docname, match[1]


SHARED_TEST_FILES = ("tests/servers.py", "tests/conftest.py", "tests/tiers.py")
INCLUDE = re.compile(r"^\s*\.\. literalinclude:: /\.\./(tests/\S+)\s*$", re.M)


def included_tests(srcdir: Path):
    """The test files that hand-written pages show with literalinclude."""
    for path in srcdir.rglob("*.rst"):
        if path.relative_to(srcdir).parts[0] not in GENERATED:
            yield from INCLUDE.findall(path.read_text())


def generate(app) -> None:
    srcdir = Path(app.srcdir)
    root = srcdir.parent
    modules = collect_tests(root)
    app.proofs_modules = modules
    for docname, target in citations(srcdir):
        test, _, _ = resolve(target, docname, modules)
        if test is not None:
            test.cited_by.add(docname)
    shown = set(SHARED_TEST_FILES) | set(included_tests(srcdir))
    wanted = set()
    for rel, tests in modules.items():
        out = srcdir / "proof" / (proof_docname(rel) + ".rst")
        write_if_changed(out, proof_page(app, rel, tests, rel in shown))
        wanted.add(out)
    out = srcdir / "proof" / "index.rst"
    write_if_changed(out, index_page(modules))
    wanted.add(out)
    files = [
        p
        for p in sorted((root / "snippets").rglob("*"))
        if p.is_file() and p.suffix in SNIPPET_SUFFIXES and "__pycache__" not in p.parts
    ]
    files += [root / rel for rel in sorted(shown) if (root / rel).exists()]
    for path in files:
        rel = path.relative_to(root).as_posix()
        if path.name == "__init__.py":
            continue
        out = srcdir / "code" / (rel.rsplit(".", 1)[0] + ".rst")
        write_if_changed(out, code_page(app, root, path))
        wanted.add(out)
    # Pages of modules that no longer exist go, so no stale proof is shown.
    for folder in GENERATED:
        for stale in (srcdir / folder).rglob("*.rst"):
            if stale not in wanted:
                stale.unlink()


# -- captions that link to the whole file --------------------------------------


def link_captions(app, doctree) -> None:
    root = Path(app.srcdir).parent
    for block in doctree.findall(nodes.literal_block):
        source = block.get("source")
        if not source or not isinstance(block.parent, nodes.container):
            continue
        try:
            rel = Path(source).resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        if not rel.startswith(("snippets/", "tests/")):
            continue
        docname = app.env.docname
        if docname.startswith(("code/", "proof/")):
            continue  # already the whole file, or its own test's page
        for caption in block.parent.findall(nodes.caption):
            text = caption.astext()
            xref = addnodes.pending_xref(
                "",
                refdomain="std",
                reftype="doc",
                reftarget="/code/" + rel.rsplit(".", 1)[0],
                refexplicit=True,
                refwarn=True,
            )
            xref += nodes.inline(text, text)
            caption.clear()
            caption += xref


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
    app.add_role("installed", installed_role)
    app.connect("builder-inited", generate)
    app.connect("doctree-read", link_captions)
    app.connect("doctree-read", tidy_marks)
    app.add_node(proof_ref)
    app.connect("doctree-resolved", resolve_proofs)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
