"""A "Run" button on the ``>>>`` examples of pages whose examples run in the
reader's browser, with Pyodide (Python on WebAssembly).

What runs
    The button runs what Sybil runs for that page (conftest.py), in the same
    order and in one namespace: every ``.. invisible-code-block: python``
    and ``.. code-block:: python`` block, and every ``>>>`` example, up to
    and including the block whose button was pressed. ``.. clear-namespace``
    starts a new namespace; examples between ``.. skip: start`` and
    ``.. skip: end``, or after ``.. skip: next``, are not run and get no
    button. The reader may edit a block and run it again: a block edited
    after it ran, or a block above the last one run, runs the page again
    from its top, with the snippet modules imported afresh.

Which pages get it (the rule)
    A page is runnable when all the Python it runs imports only the standard
    library (less the modules in :data:`NEEDS`, which open sockets, start
    processes or threads, or reach a store; ``threading.Thread`` counts as
    an import of its own), the seven packages of a Flask install
    (:data:`PACKAGES`, pinned to tests/requirements.txt) and the modules of
    ``snippets/`` that themselves follow this rule, followed import by
    import. The imports are read from the page and the snippet modules'
    syntax trees at build time, so a renamed or new snippet needs nothing
    here. Any other import (a store's client, an HTTP client, a server, the
    project's test launchers) means the page needs something Python in a
    browser tab does not have: the page gets no button, and one generated
    line, above its first example, says what it needs. A page may also opt
    out with a reason of its own, as the file-wide field ``:no-run: reason``.
    Whether each runnable example gives the output the page shows is
    checked in Chromium by tests/site_checks/test_tryit_browser.py. Where
    Pyodide's Python (3.14) prints something else than CPython 3.11, the
    example is listed in :data:`DIFFERENCES` with what Run prints and why;
    the page shows that line under the block, and the test checks that Run
    prints exactly that.

What it costs
    Pages with no runnable example load no script of this extension. A
    runnable page loads two small files (tryit.js, tryit.css); Pyodide (from
    its npm package, vendored by docs/_ext/vendor_pyodide.py into a cache),
    the wheels and a zip of ``snippets/`` are downloaded on the first click,
    from the site itself, and the button says how many megabytes that is.
"""

from __future__ import annotations

import ast
import io
import json
import shutil
import sys
import zipfile
from pathlib import Path

import vendor_pyodide
from docutils import nodes

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = ROOT / "snippets"
STATIC = "_static/tryit"

PACKAGES = set(vendor_pyodide.PACKAGES)
# Standard-library modules that need what a browser tab does not give Python:
# a socket, another process, a thread pool, a store on disk that outlives the
# tab. The value names the need in the page's one line.
NEEDS = {
    "socket": "a network socket",
    "ssl": "a network socket",
    "select": "a network socket",
    "selectors": "a network socket",
    "socketserver": "a server",
    "http.server": "a server",
    "http.client": "a network connection",
    "urllib.request": "a network connection",
    "smtplib": "a network connection",
    "ftplib": "a network connection",
    "wsgiref.simple_server": "a server",
    "subprocess": "another process",
    "multiprocessing": "another process",
    "concurrent": "threads",
    "threading.Thread": "a thread",
    "threading.Timer": "a thread",
    "sqlite3": "a database file",
    "dbm": "a database file",
    "shelve": "a database file",
    "webbrowser": "a browser API",
}
# Third-party and project modules the rule meets most: a clearer word for the
# page's line than "a package".
KNOWN = {
    "tests": "the project's test servers",
    "bench": "the benchmark apps",
    "redis": "a Redis server",
    "pymemcache": "a memcached server",
    "sqlalchemy": "a database",
    "flask_sqlalchemy": "a database",
    "psycopg": "a PostgreSQL server",
    "celery": "a Celery worker",
    "httpx": "a network connection",
    "requests": "a network connection",
    "gevent": "a server",
    "gunicorn": "a server",
    "waitress": "a server",
    "asgiref": "an ASGI server",
    "a2wsgi": "an ASGI server",
    "quart": "an ASGI server",
    "playwright": "a browser",
}
UNKNOWN = "a package the browser does not install"

# Examples whose output under Pyodide's Python differs from CPython 3.11's (the
# version CI runs), keyed by the example's source: (what Pyodide prints, why).
# The page shows the line under the block; the browser test checks that Run
# prints exactly this, so the note cannot outlive the difference.
DIFFERENCES = {
    'csv.writer(WriteThrough(), lineterminator="\\n").writerow(["ok\\r=1+1"])\n': (
        "'\"ok\\r=1+1\"\\n'\n",
        "Python 3.14, which Run uses, quotes a field that holds a bare \\r, "
        "so Run prints '\"ok\\r=1+1\"\\n' here; CPython 3.11, which the page "
        "shows, does not.",
    ),
}


# -- what Sybil runs on a page ------------------------------------------------


def page_steps(doctree):
    """The page's Python in document order: ("code", text), ("doctest", text,
    node or None), ("clear",). Skipped examples are left out."""
    steps, skipping, skip_next = [], False, False
    for node in doctree.findall():
        if isinstance(node, nodes.comment):
            text = node.astext()
            head, _, body = text.partition("\n")
            head = head.strip()
            if head.startswith("invisible-code-block:") and "python" in head:
                if not (skipping or skip_next):
                    steps.append(("code", body.strip("\n") + "\n"))
                skip_next = False
            elif head.startswith("skip:"):
                action = head[5:].strip()
                if action.startswith("start"):
                    skipping = True
                elif action.startswith("end"):
                    skipping = False
                elif action.startswith("next"):
                    skip_next = True
            elif head.startswith("clear-namespace"):
                steps.append(("clear",))
        elif isinstance(node, nodes.doctest_block):
            if not (skipping or skip_next):
                text = node.get("tryit_source", node.astext())
                steps.append(("doctest", text, node))
            skip_next = False
        elif isinstance(node, nodes.literal_block) and not node.get("source"):
            # a code-block directive (a literalinclude has a source file)
            text = node.astext()
            if node.get("language") in ("python", "python3", "py"):
                if not (skipping or skip_next):
                    steps.append(("code", text + "\n"))
                skip_next = False
            elif text.lstrip().startswith(">>> "):
                if not (skipping or skip_next):
                    steps.append(("doctest", text, None))
                skip_next = False
    return steps


def _sources(steps):
    import doctest

    for step in steps:
        if step[0] == "code":
            yield step[1]
        elif step[0] == "doctest":
            for example in doctest.DocTestParser().get_examples(step[1]):
                yield example.source


_FILE_IMPORTS: dict[Path, tuple[float, list[tuple[str, int]]]] = {}


def _imports(source: str, package: str | None = None) -> list[str]:
    """The absolute names imported by ``source`` (relative ones resolved
    against ``package``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "threading"
        ):
            names.append(f"threading.{node.attr}")  # threading.Thread(...)
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and package:
                parent = package.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.append(base)
            # from snippets import hello_stream: a module, not a name
            names += [f"{base}.{alias.name}" for alias in node.names]
    return [name for name in names if name]


def _module_file(name: str) -> Path | None:
    parts = name.split(".")
    if parts[0] != "snippets":
        return None
    path = ROOT.joinpath(*parts)
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _file_imports(path: Path) -> list[str]:
    mtime = path.stat().st_mtime
    cached = _FILE_IMPORTS.get(path)
    if cached is None or cached[0] != mtime:
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if path.name != "__init__.py":
            package = package.rpartition(".")[0]
        cached = (mtime, _imports(path.read_text(), package))
        _FILE_IMPORTS[path] = cached
    return cached[1]


def _need(name: str) -> str | None:
    """What the import of ``name`` needs that a browser tab lacks, or None."""
    top = name.split(".")[0]
    if top == "snippets" or top in PACKAGES or top == "__future__":
        return None
    for module, need in NEEDS.items():
        if name == module or name.startswith(module + "."):
            return need
    if top in sys.stdlib_module_names:
        return None
    return KNOWN.get(top, UNKNOWN)


def why_not_runnable(steps) -> tuple[str, str] | None:
    """(need, module) for the first import the browser cannot satisfy."""
    seen: set[str] = set()
    todo = [name for source in _sources(steps) for name in _imports(source)]
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if need := _need(name):
            return need, name
        if path := _module_file(name):
            todo += _file_imports(path)
    return None


# -- the build ----------------------------------------------------------------


def keep_doctest_source(app, doctree):
    """Sphinx shows doctest blocks without ``<BLANKLINE>`` and ``# doctest:``
    flags (trim_doctest_flags, a post-transform); the examples run as
    written, so the text is kept before that."""
    for node in doctree.findall(nodes.doctest_block):
        node["tryit_source"] = node.astext()


def builder_inited(app):
    if app.builder.format != "html":
        app.tryit = None
        return
    manifest = vendor_pyodide.ensure()
    snippets_zip = _snippets_zip()
    pyodide_dir = f"pyodide-{manifest['pyodide_version']}"
    fetched = ["pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm"]
    fetched += ["python_stdlib.zip", "pyodide-lock.json"]
    size = sum((manifest["pyodide_dir"] / name).stat().st_size for name in fetched)
    size += sum((manifest["wheels_dir"] / n).stat().st_size for n in manifest["wheels"])
    size += len(snippets_zip)
    here = Path(__file__).resolve().parents[1] / "_static" / "tryit"
    size += sum(
        (here / name).stat().st_size for name in ("tryit-worker.mjs", "runtime.py")
    )
    app.tryit = {
        "manifest": manifest,
        "snippets_zip": snippets_zip,
        "config": {
            "pyodide": f"{pyodide_dir}/",
            "pyodideVersion": manifest["pyodide_version"],
            "wheels": [f"wheels/{name}" for name in manifest["wheels"]],
            # One name and whole megabytes: a page a rebuild leaves alone
            # after a snippet changed still names the zip the build wrote,
            # and says the same size (its 60 kB move no whole megabyte).
            "snippets": "snippets.zip",
            "bytes": size,
            "megabytes": f"{size / 1e6:.0f}",
        },
    }


def _snippets_zip() -> bytes:
    """snippets/ (modules, templates, data files) as a reproducible zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(SNIPPETS.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                rel = path.relative_to(ROOT).as_posix()
                if path.suffix == ".pyc":
                    continue
                info = zipfile.ZipInfo(rel, date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(info, path.read_bytes())
    return buffer.getvalue()


def doctree_resolved(app, doctree, docname):
    if getattr(app, "tryit", None) is None:
        return
    steps = page_steps(doctree)
    blocks = [step for step in steps if step[0] == "doctest" and step[2] is not None]
    if not blocks:
        return
    opt_out = app.env.metadata.get(docname, {}).get("no-run")
    reason = None
    if opt_out:
        reason = f"No Run button on this page: {opt_out}"
    elif found := why_not_runnable(steps):
        need, module = found
        if need is UNKNOWN:
            reason = (
                f"No Run button on this page: its examples import {module}, "
                "which the Python in your browser does not install."
            )
        else:
            reason = (
                f"No Run button on this page: its examples need {need} "
                f"(they use {module}), which Python in a browser tab cannot have."
            )
    if reason:
        note = nodes.paragraph("", reason, classes=["tryit-none"])
        first = blocks[0][2]
        first.parent.insert(first.parent.index(first), note)
        return
    program = []
    for step in blocks:
        step[2]["classes"].append("tryit-block")
        for _printed, why in _differences(step[1]).values():
            note = nodes.paragraph(
                "", f"In your browser: {why}", classes=["tryit-note"]
            )
            step[2].parent.insert(step[2].parent.index(step[2]) + 1, note)
    index = 0
    for step in steps:
        if step[0] == "code":
            program.append({"kind": "code", "code": step[1]})
        elif step[0] == "clear":
            program.append({"kind": "clear"})
        else:
            button = None
            if step[2] is not None:
                button, index = index, index + 1
            program.append(
                {
                    "kind": "doctest",
                    "text": step[1],
                    "block": button,
                    "differs": {k: v[0] for k, v in _differences(step[1]).items()},
                }
            )
    payload = json.dumps({"steps": program, **app.tryit["config"]})
    payload = payload.replace("<", "\\u003c")  # no </script> inside the script
    doctree.append(
        nodes.raw(
            "",
            f'<script type="application/json" id="tryit-program">{payload}</script>',
            format="html",
        )
    )


def _differences(text):
    import doctest

    sources = {e.source for e in doctest.DocTestParser().get_examples(text)}
    return {k: v for k, v in DIFFERENCES.items() if k in sources}


def page_context(app, pagename, templatename, context, doctree):
    if doctree is None or not any(
        "tryit-block" in node["classes"]
        for node in doctree.findall(nodes.doctest_block)
    ):
        return
    app.add_css_file("tryit/tryit.css")
    app.add_js_file("tryit/tryit.js", type="module")


def build_finished(app, exception):
    if exception or getattr(app, "tryit", None) is None:
        return
    out = Path(app.outdir) / STATIC
    manifest = app.tryit["manifest"]
    config = app.tryit["config"]
    _mirror(manifest["pyodide_dir"], out / config["pyodide"].rstrip("/"))
    _mirror(manifest["wheels_dir"], out / "wheels")
    target = out / config["snippets"]
    if not target.exists() or target.read_bytes() != app.tryit["snippets_zip"]:
        target.write_bytes(app.tryit["snippets_zip"])


def _mirror(source: Path, target: Path) -> None:
    """Copy the files of ``source`` that ``target`` lacks or has another size of."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        copy = target / path.name
        if not copy.exists() or copy.stat().st_size != path.stat().st_size:
            shutil.copyfile(path, copy)


def setup(app):
    app.connect("builder-inited", builder_inited)
    app.connect("doctree-read", keep_doctest_source)
    app.connect("doctree-resolved", doctree_resolved)
    app.connect("html-page-context", page_context)
    app.connect("build-finished", build_finished)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
