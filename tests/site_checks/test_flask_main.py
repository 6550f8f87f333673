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
CHANGED = {
    'docs/state/lifecycle.rst: >>> print(*EVENTS, sep="\\n")': TEARDOWN_ONCE,
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
}  # fmt: skip


def failure_key(nodeid: str) -> str:
    """``docs/x.rst::line:12,column:1`` -> ``docs/x.rst: >>> first line``."""
    match = re.fullmatch(r"(.+\.rst)::line:(\d+),column:\d+", nodeid)
    if not match:
        return nodeid
    path, line = match[1], int(match[2])
    return f"{path}: {(ROOT / path).read_text().splitlines()[line - 1].strip()}"


@pytest.mark.no_cover
def test_in_process_tier_on_flask_main():
    """The selected examples and in-process tests on Flask and Werkzeug main:
    every failure is a listed, proven change, and every listed change still
    fails. The run's duration is printed (``-s``) for the record."""
    items = selection()
    assert (
        "docs/state/lifecycle.rst" in items and "tests/state/test_lifecycle.py" in items
    )
    env = next_env({"FSP_RECORD_DURATIONS": "0"})
    with tempfile.TemporaryDirectory(prefix="flask-next-run-") as folder:
        env["TMPDIR"] = folder
        env["DATABASE_URL"] = f"sqlite:///{folder}/flask_sqlalchemy_stock.sqlite3"
        started = time.monotonic()
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--no-cov",
             "-n", "0", "-q", "-m", "not slow",
             *(f"--deselect={nodeid}" for nodeid in DESELECT), *items],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        took = time.monotonic() - started
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    wheels = [Path(n).name for n in NEXT]
    print(f"\n{len(items)} files on {wheels}: {summary} ({took:.1f} s)")
    failed = {
        failure_key(line.split(" ", 1)[1].split(" - ", 1)[0])
        for line in run.stdout.splitlines()
        if line.startswith(("FAILED ", "ERROR "))
    }
    assert " passed" in summary, run.stdout[-3000:] + run.stderr[-2000:]
    unexpected = failed - CHANGED.keys()
    assert not unexpected, (
        f"fail on main, not known changes: {sorted(unexpected)}\n{run.stdout[-6000:]}"
    )
    stale = {
        key for key in CHANGED if key.split(":")[0].split("::")[0] in items
    } - failed
    assert not stale, f"listed as changed, but pass on main: {sorted(stale)}"
    # A deprecation that the repository's own code triggers on main (Werkzeug
    # 3.2 deprecates parse_range_header, parse_etags and friends) is named in
    # pytest's warnings summary by the file that made the call.
    ours = [
        line for line in run.stdout.splitlines()
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
    registered before it; on main all run, and the errors come out together
    as an ExceptionGroup (pallets/flask#5928)."""
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
