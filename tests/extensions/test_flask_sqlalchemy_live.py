"""extensions/flask_sqlalchemy on Flask 3.1.1 and on the locked Flask: what
Flask-SQLAlchemy's session does to a stream on each side of 3.1.2.

Each test runs the same probe app in a new interpreter on each release
(3.1.1 fetched from the package index, see ``fetched_flask`` in
tests/servers.py), against a SQLite file database in a temporary folder,
and compares what it saw.
"""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.flask_versions import run_on_flask
from tests.servers import postgres_server

pytestmark = pytest.mark.live

LOCKED = "3.1.3"
RELEASES = ["3.1.1", LOCKED]

# Runs in a fresh interpreter: registers probe routes on the snippet's app
# (before its first request), requests each, and prints what happened.
PROBES = r"""
from importlib.metadata import version

from flask import Response, stream_with_context
from sqlalchemy import inspect, select

from snippets.flask_sqlalchemy import Stock, Supplier, app, db, seed

seen = {"flask": version("flask"), "teardowns": []}


def error(exc):
    return f"{type(exc).__name__}: {exc}"


@app.teardown_appcontext  # runs before Flask-SQLAlchemy's session.remove()
def record_teardown(exc):
    seen["teardowns"].append(db.session.registry.has())


@app.get("/core-result-from-view")
def core_result_from_view():
    result = db.session.execute(select(Stock.sku).order_by(Stock.id))

    def generate():
        checked_out = db.engine.pool.checkedout()
        yield repr((checked_out, sum(1 for _ in result)))

    return Response(stream_with_context(generate()))


@app.get("/orm-result-from-view")
def orm_result_from_view():
    stmt = select(Stock).order_by(Stock.id).execution_options(yield_per=5)
    result = db.session.scalars(stmt)

    def generate():
        yield repr(sum(1 for _ in result))

    return Response(stream_with_context(generate()))


@app.get("/which-session")
def which_session():
    view_session, view_key = db.session(), db.session.registry.scopefunc()
    item = db.session.get(Stock, 1)

    def generate():
        seen["generator session"] = session = db.session()
        yield repr({
            "same session": session is view_session,
            "same scope key": db.session.registry.scopefunc() == view_key,
            "view's object detached": inspect(item).detached,
            "query works": db.session.scalar(select(Stock.sku).limit(1)),
        })

    return Response(stream_with_context(generate()))


@app.get("/plain-generator-lazy-load")
def plain_generator_lazy_load():
    items = Stock.query.order_by(Stock.id).limit(3).all()

    def generate():  # no stream_with_context
        yield items[0].sku + " "
        yield items[0].supplier.name

    return Response(generate())


@app.get("/plain-generator-session")
def plain_generator_session():
    def generate():
        yield repr(db.session.scalar(select(Stock.sku).limit(1)))

    return Response(generate())


@app.get("/commit-view-object")
def commit_view_object():
    item = db.session.get(Stock, 1)  # loaded in the view

    @stream_with_context
    def generate():
        item.quantity = 999
        db.session.add(Supplier(id=1000, name="added in the generator"))
        db.session.commit()
        yield "committed"

    return Response(generate())


@app.get("/commit-generator-object")
def commit_generator_object():
    item_id = 2  # a plain value from the view

    @stream_with_context
    def generate():
        item = db.session.get(Stock, item_id)  # loaded in the generator
        item.quantity = 888
        db.session.commit()
        yield "committed"

    return Response(generate())


def request(path):  # the chunks the body gave before it failed, then its error
    seen["teardowns"] = []
    body = ""
    try:
        with app.test_client().get(path) as response:
            for chunk in response.response:
                body += chunk.decode()
    except Exception as exc:
        body += error(exc)
    return {"body": body, "teardowns": list(seen["teardowns"])}


with app.app_context():
    seed(rows=20)

for path in [
    "/core-result-from-view", "/orm-result-from-view", "/which-session",
    "/stock-loaded", "/plain-generator-lazy-load", "/plain-generator-session",
    "/commit-view-object", "/commit-generator-object", "/stock-first?rows=3",
]:
    seen[path] = request(path)
session = seen.pop("generator session")
seen["generator session closed at the end"] = not session.in_transaction()
with app.app_context():
    seen["quantities"] = [
        db.session.get(Stock, 1).quantity, db.session.get(Stock, 2).quantity
    ]
    seen["supplier added"] = db.session.get(Supplier, 1000) is not None
print(repr(seen))
"""


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    """What each probe route did, by Flask release. Both releases run at
    once, each on its own database file in a temporary folder."""

    def run(release):
        folder = tmp_path_factory.mktemp(f"flask-{release}")
        env = {"DATABASE_URL": f"sqlite:///{folder / 'stock.sqlite3'}"}
        seen = run_on_flask(release, PROBES, env)
        assert seen["flask"] == release
        return seen

    with ThreadPoolExecutor() as pool:
        runs = {release: pool.submit(run, release) for release in RELEASES}
        yield lambda release: runs[release].result()


DETACHED = (
    "DetachedInstanceError: Parent instance <Stock at 0x...> is not bound to a"
    " Session; lazy load operation of attribute 'supplier' cannot proceed"
    " (Background on this error at: https://sqlalche.me/e/21/bhk3)"
)


def without_address(text):
    """``<Stock at 0x7f...>`` -> ``<Stock at 0x...>``."""
    return re.sub(r" at 0x[0-9a-f]+>", " at 0x...>", text)


@pytest.mark.parametrize(
    ("release", "same", "teardowns"),
    [("3.1.1", True, [True]), (LOCKED, False, [True, True])],
)
def test_generator_gets_a_new_session_since_flask_3_1_2(
    probes, release, same, teardowns
):
    """With stream_with_context, db.session in the generator is the view's
    session on 3.1.1; since 3.1.2 it is a new one, under the same scope key
    (the same app context), after the first teardown removed the view's."""
    seen = probes(release)["/which-session"]
    body = eval(seen["body"])  # a dict the probe printed with repr()
    assert body == {
        "same session": same,
        "same scope key": True,
        "view's object detached": not same,
        "query works": "SKU-000001",
    }
    # A session exists at every teardown: one on 3.1.1, two since 3.1.2.
    assert seen["teardowns"] == teardowns
    assert probes(release)["generator session closed at the end"]


@pytest.mark.parametrize(
    ("release", "body"),
    [
        ("3.1.1", "Stock\nSKU-000001 from Supplier <2>\nSKU-000002 from Supplier <3>\n"
         "SKU-000003 from Supplier <4>\n"),
        (LOCKED, "Stock\n" + DETACHED),
    ],
)  # fmt: skip
def test_lazy_load_in_generator_fails_since_flask_3_1_2(probes, release, body):
    """The snippet's /stock-loaded: objects loaded in the view, a lazy
    relationship read in a stream_with_context generator."""
    assert without_address(probes(release)["/stock-loaded"]["body"]) == body


@pytest.mark.parametrize("release", RELEASES)
def test_lazy_load_in_plain_generator_fails_on_both(probes, release):
    """A loaded column still reads (the first chunk); the lazy load fails."""
    seen = probes(release)["/plain-generator-lazy-load"]["body"]
    assert without_address(seen) == "SKU-000001 " + DETACHED


@pytest.mark.parametrize("release", RELEASES)
def test_db_session_in_plain_generator_is_outside_app_context(probes, release):
    seen = probes(release)["/plain-generator-session"]["body"]
    assert seen.startswith("RuntimeError: Working outside of application context.")


@pytest.mark.parametrize(
    ("release", "body"),
    [
        ("3.1.1", "20"),
        (LOCKED, "InvalidRequestError: Object <Stock at 0x...> cannot be converted"
         " to 'persistent' state, as this identity map is no longer valid.  Has the"
         " owning Session been closed? (Background on this error at:"
         " https://sqlalche.me/e/21/lkrp)"),
    ],
)  # fmt: skip
def test_orm_result_executed_in_view_fails_in_generator_since_3_1_2(
    probes, release, body
):
    """A yield_per ORM result executed in the view, iterated in the
    generator: its session is closed under it since 3.1.2."""
    seen = probes(release)["/orm-result-from-view"]["body"]
    assert without_address(seen) == body


@pytest.mark.parametrize(("release", "checked_out"), [("3.1.1", 1), (LOCKED, 0)])
def test_core_result_from_view_reads_from_a_connection_back_in_the_pool(
    probes, release, checked_out
):
    """A Core result executed in the view still yields all 20 rows in the
    generator on SQLite; since 3.1.2 its connection is back in the pool
    (checked out: 0) while the generator reads it."""
    seen = probes(release)["/core-result-from-view"]["body"]
    assert seen == repr((checked_out, 20))


@pytest.mark.parametrize(("release", "quantity"), [("3.1.1", 999), (LOCKED, 7)])
def test_change_to_view_object_committed_in_generator_is_lost_since_3_1_2(
    probes, release, quantity
):
    """The generator sets quantity=999 on an object the view loaded, adds a
    row and commits: the new row is saved on both; the change to the view's
    object is silently lost since 3.1.2 (it is detached, the generator's
    session never saw it)."""
    seen = probes(release)
    assert seen["/commit-view-object"]["body"] == "committed"
    assert seen["quantities"][0] == quantity
    assert seen["supplier added"]


@pytest.mark.parametrize("release", RELEASES)
def test_object_loaded_in_generator_commits_on_both(probes, release):
    seen = probes(release)
    assert seen["/commit-generator-object"]["body"] == "committed"
    assert seen["quantities"][1] == 888


@pytest.mark.parametrize("release", RELEASES)
def test_snippet_stream_works_on_both(probes, release):
    body = probes(release)["/stock-first?rows=3"]["body"]
    assert body.startswith("<table>\n<tr><td>SKU-000001</td>")
    assert body.count("<tr>") == 3
    assert "<td>Supplier &lt;3&gt;</td>" in body


# --- the same probes on PostgreSQL (the locked Flask) -------------------------


@pytest.fixture(scope="module")
def on_postgresql():
    with postgres_server() as url:
        seen = run_on_flask(LOCKED, PROBES, {"DATABASE_URL": url})
    return seen


def test_postgresql_behaves_as_sqlite_except_the_results_from_the_view(
    probes, on_postgresql
):
    """The same probe app, DATABASE_URL pointing at PostgreSQL (psycopg 3):
    sessions, detached objects and commits behave exactly as on SQLite. The
    ORM result executed in the view fails differently: yield_per reads from
    a server-side cursor, gone with the view's transaction. The Core result
    (no yield_per) iterates there too."""
    on_sqlite = probes(LOCKED)
    different = {
        "/orm-result-from-view": (
            "ProgrammingError: (psycopg.errors.InvalidCursorName) cursor"
            ' "c_0x..." does not exist\n'
            "(Background on this error at: https://sqlalche.me/e/21/f405)"
        ),
    }
    for path, seen in on_postgresql.items():
        if not path.startswith("/"):
            assert seen == on_sqlite[path], path
        elif path in different:
            body = re.sub(r'cursor "c_[0-9a-f]+_\d+"', 'cursor "c_0x..."', seen["body"])
            assert body == different[path]
        else:
            assert without_address(seen["body"]) == without_address(
                on_sqlite[path]["body"]
            ), path
            assert seen["teardowns"] == on_sqlite[path]["teardowns"], path
