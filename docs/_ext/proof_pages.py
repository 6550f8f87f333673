"""The pages a proof links to, written at ``builder-inited`` only where their
text changed (the folders are named in docs/_ext/generated.py):

* ``docs/proof/<part>/<module>.rst``: one page per test module, each test
  with its own anchor, its docstring, its code and the pages that cite it;
* ``docs/code/<path>.rst``: every snippet and template, whole, and the test
  files a page includes or names as the place of its launchers and fixtures
  (a test module's own proof page shows its tests one by one).

And every ``literalinclude`` caption of a snippet or test links to its whole
file there. With ``proofs_repo_url`` set (conf.py reads ``FSP_REPO_URL``),
each generated page also links to the file in the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from generated import GENERATED
from proofs import ROLE, Test, collect_tests, proof_docname, resolve
from sphinx import addnodes

SNIPPET_SUFFIXES = {".py", ".html", ".txt", ".j2", ".jinja", ".conf", ".ini"}


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


def setup(app):
    app.connect("builder-inited", generate)
    app.connect("doctree-read", link_captions)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
