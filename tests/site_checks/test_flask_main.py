"""Ready for Flask 3.2: the in-process tier on Flask's and Werkzeug's main
branches (tests/flask_main.py pins them), and the proofs of what changes.

``test_in_process_tier_on_flask_main`` runs, in a subprocess, the Sybil
examples of the pages and the non-live test modules that touch what Flask 3.2
and Werkzeug 3.2 change (the request and app context, teardown,
``stream_with_context``, ETags and ranges, status lines), with the main wheels
first on ``sys.path``. The main suite runs the same items on the locked Flask,
where all of them pass; so every item that fails here is a difference. Each
must be listed in ``CHANGED`` with the test below that proves the change on
both sides, and every listed item must still fail (a stale entry fails too).
"""

import importlib.metadata
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.flask_main import NEXT, next_env, run_on_next
from tests.flask_versions import run_on_flask
from tests.servers import ROOT

PINNED = importlib.metadata.version("flask")

# What the next Flask or Werkzeug changes is in these words; a page or a test
# module without any of them runs the same code either way.
TOUCHES = re.compile(
    r"stream_with_context|app_context|request_context|teardown|after_this_request"
    r"|call_on_close|ETag|add_etag|If-Range|parse_range|LENGTH REQUIRED"
)
# Pages that match only because they link or list those words, and the
# generated proof and code pages.
NOT_PAGES = (
    "docs/index.rst",
    "docs/performance.rst",
    "docs/_",
    "docs/proof",
    "docs/code",
)


# Not run on main: a test that runs older releases of its own (it replaces the
# path, so it never sees main), and a memory measurement (4 s) of a query
# that no change touches.
DESELECT = (
    "tests/async/test_views.py::test_stream_with_context_in_an_async_view_was_fixed_in_3_1_2",
    "tests/extensions/test_flask_sqlalchemy.py::test_yield_per_stream_keeps_memory_flat_and_query_all_does_not",
)  # fmt: skip


def selection():
    """The pages and non-live test modules whose text touches ``TOUCHES``."""
    pages = [
        p for p in sorted((ROOT / "docs").rglob("*.rst"))
        if not str(p.relative_to(ROOT)).startswith(NOT_PAGES)
        and TOUCHES.search(p.read_text())
    ]  # fmt: skip
    tests = [
        p for p in sorted((ROOT / "tests").glob("*/test_*.py"))
        if p.parent.name != "site_checks"
        and not p.name.endswith(("_live.py", "_browser.py"))
        and TOUCHES.search(p.read_text())
    ]  # fmt: skip
    return [str(p.relative_to(ROOT)) for p in pages + tests]


# A failing Sybil example is named by its page and its first line (line
# numbers move); a failing test by its node id. Each maps to the proof below.
LIFECYCLE = "tests/state/test_lifecycle.py::test_"
TEARDOWN_ONCE = "test_teardown_runs_once_after_the_body_on_flask_3_2"
URLENCODED_LIMITED = (
    "test_an_urlencoded_form_is_held_to_max_form_memory_size_on_werkzeug_3_2"
)
CHANGED = {
    'docs/state/lifecycle.rst: >>> print(*EVENTS, sep="\\n") [2]': TEARDOWN_ONCE,
    'docs/state/lifetime.rst: >>> client.get("/state").json["stale_g"]':
        "test_abandoned_generator_leaks_no_g_into_the_next_request_on_flask_3_2",
    "tests/state/test_lifetime.py::"
    "test_an_abandoned_stream_with_context_generator_leaks_into_the_next_request":
        "test_abandoned_generator_leaks_no_g_into_the_next_request_on_flask_3_2",
    'docs/state/lifecycle.rst: >>> teardown_client.get("/db-captured")':
        "test_connection_captured_in_view_still_open_in_generator_on_flask_3_2",
    "docs/basics/request_context.rst: >>> with app.app_context():":
        "test_stream_with_context_needs_only_an_app_context_on_flask_3_2",
    "docs/extensions/flask_sqlalchemy.rst: >>> next(response.response)":
        "test_lazy_load_in_generator_works_on_flask_3_2",
    'docs/files/uploads.rst: >>> status, b"send a Content-Length or a chunked body"'
    ' in b"".join(body)': "test_status_reason_is_title_case_on_werkzeug_3_2",
    f"{LIFECYCLE}teardown_runs_twice_with_stream_with_context_since_flask_3_1_2":
        TEARDOWN_ONCE,
    f"{LIFECYCLE}uploaded_file_parsed_in_view_is_closed_before_generator":
        TEARDOWN_ONCE,
    f"{LIFECYCLE}connection_captured_in_view_is_closed_in_generator":
        "test_connection_captured_in_view_still_open_in_generator_on_flask_3_2",
    f"{LIFECYCLE}connection_fetched_in_generator_works_and_teardown_runs_twice":
        TEARDOWN_ONCE,
    f"{LIFECYCLE}non_idempotent_teardown_fails_at_end_of_stream": TEARDOWN_ONCE,
    f"{LIFECYCLE}stream_with_context_runs_teardown_before_the_first_chunk":
        TEARDOWN_ONCE,
    f"{LIFECYCLE}second_teardown_fails_after_the_last_chunk": TEARDOWN_ONCE,
    'docs/files/uploads.rst: >>> forms.post("/form-then-stream", data=note).json':
        URLENCODED_LIMITED,
    "tests/files/test_uploads.py::"
    "test_a_multipart_field_over_500_000_bytes_is_a_413_and_urlencoded_is_not":
        URLENCODED_LIMITED,
}  # fmt: skip


def example_lines(path: str):
    """Each doctest example on a page: ((its line, stripped; which occurrence
    of that line), its node id)."""
    seen: dict[str, int] = {}
    lines = (ROOT / path).read_text().splitlines()
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if text.startswith(">>> "):  # each >>> line is one example
            seen[text] = seen.get(text, 0) + 1
            column = len(line) - len(line.lstrip()) + 1
            yield (text, seen[text]), f"{path}::line:{number},column:{column}"


def nodeid_keys(path: str) -> dict[str, str]:
    """Node id -> ``CHANGED`` key for every example on a page."""
    examples = list(example_lines(path))
    twice = {text for (text, k), _ in examples if k > 1}
    return {
        nodeid: f"{path}: {text}" + (f" [{k}]" if text in twice else "")
        for (text, k), nodeid in examples
    }


def run_pytest(args, env):
    """Run pytest on ``args`` in ``env``; (failed node ids, stdout, summary).
    Its own --basetemp: without one, each run numbers a new
    /tmp/pytest-of-<user>/pytest-N and removes all but the newest three,
    the outer run's among them while its workers still use it (a clean-clone
    run failed 9 tests with FileExistsError on its popen-gw1 folder)."""
    with tempfile.TemporaryDirectory(prefix="flask-main-run-") as tmp:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--no-cov",
             "-n", "0", "-q", "-m", "not slow", f"--basetemp={tmp}/basetemp",
             *(f"--deselect={nodeid}" for nodeid in DESELECT), *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    assert " passed" in summary, run.stdout[-3000:] + run.stderr[-2000:]
    failed = {
        line.split(" ", 1)[1].split(" - ", 1)[0]
        for line in run.stdout.splitlines()
        if line.startswith(("FAILED ", "ERROR "))
    }
    return failed, run.stdout, summary


# About 22 s of one core on a quiet machine, two pytest runs of 750 items;
# a clean-clone run beside another took over 120 s (the suite's default).
@pytest.mark.timeout(600)
@pytest.mark.no_cover
def test_in_process_tier_on_flask_main():
    """The selected examples and in-process tests on Flask and Werkzeug main,
    in two runs. First everything but the listed changes: all of it passes.
    Then the files that hold the listed changes, whole (an example needs the
    ones before it): each listed change fails. Two runs, because an item that
    fails on main can leave a context pushed for whatever runs next. The
    duration is printed (``-s``) for the record."""
    items = selection()
    assert {"docs/state/lifecycle.rst", "tests/state/test_lifecycle.py"} <= set(items)
    keys = {}  # node id -> CHANGED key, for every example of the pages
    for path in items:
        if path.endswith(".rst"):
            keys.update(nodeid_keys(path))
    changed = [nodeid for nodeid, key in keys.items() if key in CHANGED]
    changed += [key for key in CHANGED if "::" in key]
    files = sorted({nodeid.split("::")[0] for nodeid in changed} & set(items))
    env = next_env({"FSP_RECORD_DURATIONS": "0"})
    with tempfile.TemporaryDirectory(prefix="flask-next-run-") as folder:
        env["TMPDIR"] = folder
        env["DATABASE_URL"] = f"sqlite:///{folder}/flask_sqlalchemy_stock.sqlite3"
        started = time.monotonic()
        failed, out, summary = run_pytest(
            [*(f"--deselect={nodeid}" for nodeid in changed), *items], env
        )
        took = time.monotonic() - started
        failed_changed, _, summary_changed = run_pytest(files, env)
        took_all = time.monotonic() - started
    wheels = [Path(n).name for n in NEXT]
    print(f"\n{len(items)} files on {wheels}: {summary} ({took:.1f} s);")
    print(f"the {len(files)} with changes: {summary_changed} ({took_all:.1f} s in all)")
    assert not failed, f"fail on main, not listed in CHANGED: {sorted(failed)}\n{out}"
    found = {keys.get(nodeid, nodeid) for nodeid in failed_changed}
    stale = {key for key in CHANGED if key.split(":")[0] in items} - found
    assert not stale, f"listed in CHANGED, but pass on main: {sorted(stale)}"
    # A deprecation that the repository's own code triggers on main (Werkzeug
    # 3.2 deprecates parse_range_header, parse_etags and friends) is named in
    # pytest's warnings summary by the file that made the call.
    ours = [
        line for line in out.splitlines()
        if "DeprecationWarning" in line and f"{ROOT}/snippets/" in line
    ]  # fmt: skip
    assert not ours, "\n".join(ours)


def on_both(code, env=None):
    """What ``code`` prints last on the locked Flask, and on Flask main."""
    return run_on_flask(PINNED, code, env), run_on_next(code, env)


def test_teardown_runs_once_after_the_body_on_flask_3_2():
    """lifecycle.rst: with ``stream_with_context``, teardown runs when the
    view returns and again after the body on 3.1.2 to 3.1.3; on main the
    wrapper holds the context from the view on, and teardown runs once, after
    the body."""
    code = """
from snippets.lifecycle import EVENTS, app
response = app.test_client().get("/wrapped")
response.get_data()
response.close()
print(repr([e for e in EVENTS if e.startswith(("body", "teardown"))]))
"""
    body = ["body starts", "body ends"]
    teardown = ["teardown_request", "teardown_appcontext"]
    assert on_both(code) == (teardown + body + teardown, body + teardown)


def test_connection_captured_in_view_still_open_in_generator_on_flask_3_2():
    """lifecycle.rst: a connection the view fetched from ``g`` is closed when
    the generator uses it on 3.1.3; on main no teardown has run yet."""
    code = """
import sqlite3
from snippets.lifecycle_teardown import app
try:
    print(repr(app.test_client().get("/db-captured").get_data(as_text=True)))
except sqlite3.ProgrammingError as error:
    print(repr(str(error)))
"""
    assert on_both(code) == ("Cannot operate on a closed database.", "42\n")


def test_every_teardown_runs_when_one_raises_on_flask_3_2():
    """lifecycle.rst: on 3.1.3 a teardown that raises skips the ones
    registered before it; on main all run, and the error comes out wrapped in
    an ExceptionGroup (pallets/flask#5928)."""
    code = """
from flask import Flask
app = Flask("teardowns")
ran = []

@app.teardown_appcontext
def registered_first(exc):
    ran.append("registered first")

@app.teardown_appcontext
def registered_last(exc):  # teardown functions run last-registered first
    ran.append("registered last")
    raise KeyError("resource")

app.get("/")(lambda: "ok")
try:
    app.test_client().get("/")
except Exception as error:
    print(repr((ran, type(error).__name__)))
"""
    assert on_both(code) == (
        (["registered last"], "KeyError"),
        (["registered last", "registered first"], "ExceptionGroup"),
    )


def test_stream_with_context_needs_only_an_app_context_on_flask_3_2():
    """request_context.rst, testing.rst: outside a request the wrapper
    refuses on 3.1.3; on main an app context is enough, and the wrapper
    pushes it when it is created, so it stays pushed after the ``with``
    block until the wrapper is closed."""
    code = """
from flask import Flask, has_app_context, stream_with_context
app = Flask("bare")
with app.app_context():
    try:
        wrapper = stream_with_context(iter(["x"]))
    except RuntimeError:
        wrapper = None
after_block = has_app_context()
if wrapper is not None:
    wrapper.close()
print(repr((wrapper is not None, after_block, has_app_context())))
"""
    assert on_both(code) == ((False, False, False), (True, True, False))


def test_abandoned_generator_leaks_no_g_into_the_next_request_on_flask_3_2():
    """lifetime.rst (pallets/flask#6123): after a ``stream_with_context``
    generator is abandoned unclosed, the next request on the thread reuses
    its context on 3.1.3 (the old ``g``, its own teardown skipped); on main
    it pushes its own (a fresh ``g``, its teardown runs). On both, the
    abandoned generator's connection stays checked out until it is closed."""
    code = """
from snippets.lifetime import TEARDOWNS, app
client = app.test_client()
response = client.get("/leaky", buffered=False)
lines = iter(response.response)
next(lines), next(lines)
before = len(TEARDOWNS)
state = client.get("/state").json
teardowns = len(TEARDOWNS) - before
response.close()
after = client.get("/state").json
print(repr((state["stale_g"], state["checked_out"], teardowns, after["checked_out"])))
"""
    with tempfile.TemporaryDirectory() as folder:
        env = {"DATABASE_URL": f"sqlite:///{folder}/lifetime.sqlite3"}
        assert on_both(code, env) == (
            ("the streaming request", 1, 0, 0),
            (None, 1, 1, 0),
        )


def test_lazy_load_in_generator_works_on_flask_3_2():
    """flask_sqlalchemy.rst: rows loaded in the view fail to lazy-load in a
    ``stream_with_context`` generator on 3.1.3; on main the session is still
    open and all three rows stream, as on 3.1.1."""
    code = """
from sqlalchemy.orm.exc import DetachedInstanceError
from snippets.flask_sqlalchemy import app, seed
with app.app_context():
    seed(rows=3)
response = app.test_client().get("/stock-loaded")
try:
    print(repr(len(b"".join(response.response).splitlines())))
except DetachedInstanceError as error:
    print(repr(type(error).__name__))
response.close()
"""
    with tempfile.TemporaryDirectory() as folder:
        env = {"DATABASE_URL": f"sqlite:///{folder}/stock.sqlite3"}
        assert on_both(code, env) == ("DetachedInstanceError", 4)


def test_status_reason_is_title_case_on_werkzeug_3_2():
    """uploads.rst: Werkzeug 3.2 writes reason phrases in title case; the
    status code is the same."""
    code = """
from werkzeug.test import EnvironBuilder, run_wsgi_app
from snippets.uploads import app
environ = EnvironBuilder("/uploads/x.bin", method="PUT", data=b"data").get_environ()
del environ["CONTENT_LENGTH"]
print(repr(run_wsgi_app(app, environ, buffered=True)[1]))
"""
    assert on_both(code) == ("411 LENGTH REQUIRED", "411 Length Required")


def test_an_urlencoded_form_is_held_to_max_form_memory_size_on_werkzeug_3_2():
    """uploads.rst and request_bodies.rst: on Werkzeug 3.1 only a multipart
    field is held to MAX_FORM_MEMORY_SIZE; on main an urlencoded one is too."""
    code = """
from snippets.uploads_forms import app
note = {"note": "x" * 500_001}
print(repr(app.test_client().post("/form-then-stream", data=note).status_code))
"""
    assert on_both(code) == (200, 413)


def test_add_etag_is_sha3_256_on_werkzeug_3_2():
    """middleware.rst: ``add_etag()`` gives 40 hex digits of SHA-1 on
    Werkzeug 3.1; on main, SHA3-256 in unpadded base64, so every such ETag
    changes once. ``send_file``'s ETags keep their form (downloads.rst runs
    unchanged in the tier)."""
    code = """
import base64, hashlib
from werkzeug import Response
response = Response(b"abc")
response.add_etag()
etag = response.get_etag()[0]
sha3 = base64.b64encode(hashlib.sha3_256(b"abc").digest()).decode().rstrip("=")
print(repr((etag == hashlib.sha1(b"abc").hexdigest(), etag == sha3)))
"""
    assert on_both(code) == ((True, False), (False, True))


def probe_code(module: str, *names: str) -> str:
    """The probe scripts (string constants) of another test module, read
    without importing it: importing would run its module-level set-up (an
    OpenTelemetry provider, a Flask-Login app) in this process."""
    import ast

    tree = ast.parse((ROOT / module).read_text())
    found = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
    }
    return "".join(found[name] for name in names)


def test_request_span_covers_the_body_again_on_flask_3_2():
    """opentelemetry.rst: with ``stream_with_context``, the request span ends
    at the first teardown, before the body, on 3.1.3; on main teardown runs
    once, after the body, so the span covers the body and the rows are in its
    trace, as on 3.1.1 (the probe of test_opentelemetry_live.py)."""
    code = probe_code("tests/extensions/test_opentelemetry_live.py", "PROBE")
    code += "\nprint(repr(seen))"
    keys = ("teardowns", "request span ends", "rows in the request's trace")
    pinned, main = (tuple(seen[k] for k in keys) for seen in on_both(code))
    assert pinned == (2, "before the body", [False] * 3)
    assert main == (1, "after the body", [True] * 3)


def test_database_user_in_wrapped_generator_loads_on_flask_3_2():
    """flask_login.rst: ``current_user`` loaded by the view through
    Flask-SQLAlchemy is detached in a ``stream_with_context`` generator on
    3.1.3; on main its session is still open and the lazy attribute loads,
    as on 3.1.1 (the probes of test_flask_login_live.py)."""
    code = probe_code("tests/extensions/test_flask_login_live.py", "PROBE", "PROBE_DB")
    with tempfile.TemporaryDirectory() as folder:  # a database for each side
        pinned = run_on_flask(PINNED, code, {"USERS_DB": f"{folder}/pinned.sqlite3"})
        main = run_on_next(code, {"USERS_DB": f"{folder}/main.sqlite3"})
    pinned, main = pinned["/team"], main["/team"]
    assert pinned.startswith("DetachedInstanceError: Parent instance <User at ")
    assert main == "Ada Engines"
