"""formats/database: flat memory, and the three traps of streaming from a DB."""

import importlib
import os
import shutil
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import String, create_engine, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, joinedload, mapped_column
from sqlalchemy.orm.exc import DetachedInstanceError

from snippets import database_stock as stock_table
from snippets.database_stock import (
    CHUNK_SIZE,
    SAMPLE_ROWS,
    Item,
    app,
    create_sample_database,
    engine_for,
    render_table,
    stock_query,
)
from tests.basics.test_csv_export import run_recipe_alone
from tests.servers import ROOT, server_env

MiB = 1024 * 1024


def peak_while(consume):
    """Peak of Python allocations (tracemalloc) while ``consume()`` runs."""
    tracemalloc.start()
    try:
        consume()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module", autouse=True)
def stock_db(tmp_path_factory):
    """The sample database in a folder of this module's own, removed at the
    end: nothing outlives the run, and no run sees another's database."""
    folder = tmp_path_factory.mktemp("stock")
    path = str(folder / "stock.sqlite3")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(app.config, "STOCK_DB", path)
        yield path
    engine_for(path).dispose()
    shutil.rmtree(folder)


def stock_engine():
    return engine_for(app.config["STOCK_DB"])


@pytest.fixture(scope="module")
def warm(stock_db):
    """Database built and template compiled before anything is measured."""
    create_sample_database(stock_db)
    app.test_client().get("/stock?rows=10").close()


def stream_everything():
    response = app.test_client().get(f"/stock?rows={SAMPLE_ROWS}")
    rows = sum(chunk.count(b"<tr><td>") for chunk in response.response)
    response.close()
    assert rows == SAMPLE_ROWS


# A quarter of the table: .all() already needs many times the peak of
# streaming all of it. (All 100,000 rows, traced, took 15 s of CPU on a quiet
# machine for the two .all() runs, against 4 s for 25,000.)
ALL_ROWS = SAMPLE_ROWS // 4


def orm_all_then_render():
    """The common version: load every object, then render."""
    macros = app.jinja_env.get_template("stock_table.html").module
    with Session(stock_engine()) as session:
        stmt = select(Item).options(joinedload(Item.supplier)).order_by(Item.id)
        items = session.scalars(stmt.limit(ALL_ROWS)).all()
        html = (
            str(macros.row({**vars(i), "supplier": i.supplier.name})) for i in items
        )
        assert sum(1 for _ in html) == ALL_ROWS


def core_all_then_render():
    """.all() on Core rows: lighter than ORM objects, still every row at once."""
    macros = app.jinja_env.get_template("stock_table.html").module
    with stock_engine().connect() as conn:
        rows = conn.execute(stock_query(None, ALL_ROWS)).all()
        assert sum(1 for row in rows if macros.row(row)) == ALL_ROWS


# About 9 s of CPU on a quiet machine (tracemalloc slows each allocation),
# and a fifth more with coverage's tracer: the lines it runs are the page's
# examples', measured there.
@pytest.mark.timeout(360)
@pytest.mark.no_cover
@pytest.mark.slow
def test_streaming_100k_rows_keeps_memory_flat_and_all_does_not(warm, capsys):
    streamed = peak_while(stream_everything)
    core_all = peak_while(core_all_then_render)
    orm_all = peak_while(orm_all_then_render)
    with capsys.disabled():
        print(
            f"\nstreamed {SAMPLE_ROWS:,} rows: peak {streamed / MiB:.2f} MiB; "
            f"{ALL_ROWS:,} rows: Core .all() {core_all / MiB:.1f} MiB "
            f"(x{core_all / streamed:.0f}), ORM .all() {orm_all / MiB:.1f} MiB"
            f" (x{orm_all / streamed:.0f})"
        )
    assert SAMPLE_ROWS == 100_000 and ALL_ROWS == 25_000
    assert streamed < 5 * MiB
    assert core_all > 5 * streamed
    assert orm_all > 20 * streamed


def test_all_inside_the_generator_is_not_flat_either(warm):
    """Myth: "calling .all() inside the generator keeps memory flat". Its
    peak grows with the rows: four times the rows, over three times the peak
    (measured on 5,000 and 20,000 rows: tracemalloc makes 100,000 ORM objects
    slow to count)."""

    def generate(rows):
        with Session(stock_engine()) as session:
            for item in session.scalars(select(Item).limit(rows)).all():
                yield item.sku

    def peak(rows):
        def consume():
            assert sum(1 for _ in generate(rows)) == rows

        return peak_while(consume)

    assert sum(1 for _ in generate(10)) == 10  # the statement compiled first
    small, large = peak(5_000), peak(20_000)
    assert large > 3 * small
    assert large > 4 * MiB


def test_chunks_are_regrouped_rows_of_at_least_64_kib(warm):
    response = app.test_client().get("/stock?rows=20000")
    sizes = [len(chunk) for chunk in response.response]
    assert sizes[0] < 1024  # the head goes out first, on its own
    assert all(size >= CHUNK_SIZE for size in sizes[1:-1])
    assert len(sizes) > 10


# --- trap: ORM objects used after their session closed -----------------------


def test_lazy_load_in_generator_after_session_closed_raises(warm):
    with Session(stock_engine()) as session:  # the view's session
        items = session.scalars(select(Item).limit(3)).all()

    def generate():  # runs after the view returned and the session closed
        for item in items:
            yield f"{item.sku} from {item.supplier.name}\n"

    body = generate()
    with pytest.raises(DetachedInstanceError, match="is not bound to a Session"):
        next(body)


def test_loaded_columns_survive_but_only_those(warm):
    with Session(stock_engine()) as session:
        items = session.scalars(
            select(Item).options(joinedload(Item.supplier)).limit(3)
        ).all()
    # Loaded before the session closed: safe to read in the generator.
    assert [item.supplier.name for item in items] == [
        "Supplier <2>",
        "Supplier <3>",
        "Supplier <4>",
    ]


# --- trap: a long read blocks writers (rollback journal), not with WAL --------


def small_database(tmp_path, journal_mode):
    path = tmp_path / "stock.sqlite3"
    assert create_sample_database(path, rows=5000)
    reader = create_engine(f"sqlite:///{path}")
    with reader.connect() as conn:
        mode = conn.exec_driver_sql(f"PRAGMA journal_mode={journal_mode}").scalar()
    assert mode == journal_mode.lower()
    # A writer that gives up after 0.2 s instead of SQLite's default 5 s.
    writer = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.2})
    return reader, writer


def set_quantity(writer, item_id, quantity):
    with writer.begin() as conn:
        conn.execute(update(Item).where(Item.id == item_id).values(quantity=quantity))


def test_rollback_journal_stream_makes_writer_fail_database_is_locked(tmp_path):
    reader, writer = small_database(tmp_path, "DELETE")
    stream = render_table(reader, stock_query(None, 5000), "Stock")
    next(stream), next(stream)  # the head, then rows: the SELECT is open
    with pytest.raises(OperationalError, match="database is locked"):
        set_quantity(writer, 4000, 123456)
    rest = "".join(stream)  # the stream ends, its connection closes ...
    set_quantity(writer, 4000, 123456)  # ... and now the writer gets through
    assert "123456" not in rest
    reader.dispose()
    writer.dispose()


def test_wal_lets_writer_commit_while_stream_reads_its_snapshot(tmp_path):
    reader, writer = small_database(tmp_path, "WAL")
    stream = render_table(reader, stock_query(None, 5000), "Stock")
    next(stream), next(stream)
    set_quantity(writer, 4000, 123456)  # commits at once, mid-stream
    rest = "".join(stream)
    assert "SKU-004000" in rest
    assert "123456" not in rest  # the stream reads the snapshot it started on
    with reader.connect() as conn:
        quantity = conn.scalar(select(Item.quantity).where(Item.id == 4000))
    assert quantity == 123456
    reader.dispose()
    writer.dispose()


# --- creation on first run -----------------------------------------------------


def test_two_requests_racing_to_create_the_database_both_get_it_whole(tmp_path):
    path = tmp_path / "race" / "stock.sqlite3"
    start = threading.Barrier(2)
    results = []

    def build():
        start.wait(timeout=10)
        results.append(create_sample_database(path, rows=3000))

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [False, True]  # exactly one built it
    assert sorted(p.name for p in path.parent.iterdir()) == ["stock.sqlite3"]
    check = create_engine(f"sqlite:///{path}")
    with check.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM item").scalar() == 3000
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    check.dispose()


def test_failed_creation_leaves_no_file_behind(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(stock_table.Base.metadata, "create_all", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        create_sample_database(tmp_path / "stock.sqlite3", rows=10)
    assert list(tmp_path.iterdir()) == []


# --- bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("rows=0", 400, b"rows must be a whole number from 1 to 100,000"),
        ("rows=100001", 400, b"rows must be a whole number"),
        ("rows=ten", 400, b"rows must be a whole number"),
        ("rows=", 400, b"rows must be a whole number"),
        ("warehouse=Paris", 404, b"no warehouse &#39;Paris&#39;; choose from"),
        ("warehouse=", 404, b"no warehouse"),
    ],
)
def test_bad_rows_or_warehouse_is_refused(query, status, message):
    response = app.test_client().get(f"/stock?{query}")
    assert response.status_code == status
    assert message in response.data


class PlainBase(DeclarativeBase):
    pass


class PlainItem(PlainBase):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


def peak_memory_at_first_chunk_and_end(rows):
    """tracemalloc peaks (bytes) when the first chunk exists, and at the end."""
    tracemalloc.start()
    try:
        next(rows)
        at_first_chunk = tracemalloc.get_traced_memory()[1]
        for _ in rows:
            pass
        return at_first_chunk, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_query_all_loads_every_row_before_the_first_chunk(tmp_path):
    """``Query.all()`` (what ``Model.query.all()`` calls) builds the whole list
    before the generator yields once; ``yield_per`` keeps memory flat."""
    engine = create_engine(f"sqlite:///{tmp_path / 'items.sqlite3'}")
    PlainBase.metadata.create_all(engine)
    with Session(engine) as db:
        db.execute(
            insert(PlainItem), [{"name": f"item {i:06d}"} for i in range(20_000)]
        )
        db.commit()

    def with_all(db):
        for item in db.query(PlainItem).all():
            yield f"{item.id},{item.name}\n"

    def with_yield_per(db):
        for item in db.query(PlainItem).yield_per(500):
            yield f"{item.id},{item.name}\n"

    with Session(engine) as db:
        all_first, all_end = peak_memory_at_first_chunk_and_end(with_all(db))
    with Session(engine) as db:
        _, streamed_end = peak_memory_at_first_chunk_and_end(with_yield_per(db))
    engine.dispose()
    assert all_first == all_end  # the peak is reached before the first chunk
    assert all_first > 10 * streamed_end


# --- files: only in the temporary folder --------------------------------------


def sqlite_files_changed_since(start):
    """SQLite files (and their -wal, -shm) in the repository, outside .venv
    and .git, created or changed after ``start`` (a time.time())."""
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in {".git", ".venv", "node_modules"}]
        for name in files:
            path = Path(folder, name)
            if ".sqlite3" in name and path.stat().st_mtime >= start:
                found.append(path)
    return found


def test_sample_database_is_made_in_the_temporary_folder_and_nowhere_else(tmp_path):
    """A fresh process with TMPDIR set, as the test run sets it: the database
    goes there, not into the repository (the app's instance folder held it,
    so it outlived a run in one process)."""
    start = time.time() - 1  # file times can lag the clock by a tick
    code = (
        "from snippets.database_stock import app\n"
        "response = app.test_client().get('/stock?rows=2')\n"
        "assert response.status_code == 200 and b'SKU-000002' in response.data\n"
        "response.close()\n"
    )
    env = server_env({"TMPDIR": str(tmp_path)})
    env.pop("STOCK_DB", None)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    assert (tmp_path / "stock.sqlite3").is_file()
    assert sqlite_files_changed_since(start) == []


def test_the_recipe_alone_runs_as_a_file(tmp_path):
    """snippets/database.py's recipe, pasted alone into app.py: a streamed
    200 whose head comes before any row, every seeded row escaped."""
    check = (
        "from app import app\n"
        "response = app.test_client().get('/items')\n"
        "assert response.status_code == 200 and response.is_streamed\n"
        "assert response.mimetype == 'text/html'\n"
        "chunks = list(response.response)\n"
        "assert b'<tr>' not in chunks[0] and len(chunks) > 2\n"
        "body = b''.join(chunks)\n"
        "assert body.count(b'<tr>') == 10_000 and b'Item &lt;1&gt;' in body\n"
    )
    run_recipe_alone(tmp_path, "database", check)


@pytest.mark.parametrize(
    ("module", "path"), [("database", "/items"), ("database_stock", "/stock?rows=5")]
)
def test_head_answers_like_get_with_no_body(module, path):
    app = importlib.import_module(f"snippets.{module}").app
    client = app.test_client()
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.headers == get.headers and head.data == b""
    get.close()
    head.close()
