"""extensions/flask_sqlalchemy in process: the yield_per stream against
Stock.query.all(), and the snippet's own checks. The behaviour on Flask 3.1.1
and 3.1.3 is in test_flask_sqlalchemy_live.py."""

import tracemalloc

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import joinedload

from snippets.flask_sqlalchemy import Stock, app, db, seed

MiB = 1024 * 1024

ROWS = 20_000


def peak_while(consume):
    """Peak of Python allocations (tracemalloc) while ``consume()`` runs."""
    tracemalloc.start()
    try:
        consume()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def warm():
    with app.app_context():
        seed()
    app.test_client().get("/stock-first?rows=10").close()


def stream_rows():
    with app.test_client().get(f"/stock-first?rows={ROWS}") as response:
        rows = sum(chunk.count(b"<tr>") for chunk in response.response)
    assert rows == ROWS


def all_rows():
    """The usual view: every object first, then the page."""
    with app.test_request_context():
        query = Stock.query.options(joinedload(Stock.supplier)).order_by(Stock.id)
        items = query.limit(ROWS).all()
        html = "".join(
            f"<tr><td>{s.sku}</td><td>{s.quantity}</td><td>{s.supplier.name}</td>"
            for s in items
        )
    assert html.count("<tr>") == ROWS


def test_yield_per_stream_keeps_memory_flat_and_query_all_does_not(warm, capsys):
    streamed = peak_while(stream_rows)
    loaded = peak_while(all_rows)
    with capsys.disabled():
        print(
            f"\n{ROWS:,} rows: streamed peak {streamed / MiB:.2f} MiB,"
            f" Stock.query.all() {loaded / MiB:.1f} MiB (x{loaded / streamed:.0f})"
        )
    assert streamed < 3 * MiB
    assert loaded > 5 * streamed


def test_stream_is_one_chunk_per_1000_rows(warm):
    with app.test_client().get("/stock-first?rows=2500") as response:
        sizes = [chunk.count(b"<tr>") for chunk in response.response]
    assert sizes == [0, 1000, 1000, 500, 0]


def test_stream_runs_one_query(warm):
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        with app.test_client().get("/stock-first?rows=2500") as response:
            assert sum(c.count(b"<tr>") for c in response.response) == 2500
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == 1
    assert statements[0].startswith("SELECT stock.id")


def test_seed_command_and_seed_once(tmp_path):
    with app.app_context():
        before = db.session.scalar(select(Stock.id).order_by(Stock.id.desc()))
    result = app.test_cli_runner().invoke(args=["seed", "--rows", "5"])
    assert result.exit_code == 0, result.output
    with app.app_context():  # the table had rows: seed changes nothing
        assert db.session.scalar(select(Stock.id).order_by(Stock.id.desc())) == before


@pytest.mark.parametrize(
    "rows", ["0", "200001", "ten", "", pytest.param("9" * 5000, id="huge")]
)
def test_bad_rows_are_refused_before_the_stream(rows):
    response = app.test_client().get(f"/stock-first?rows={rows}")
    assert response.status_code == 400
    assert b"rows must be a whole number from 1 to 200,000" in response.data


def test_recipe_streams_every_row_of_the_table(warm):
    with app.app_context():
        count = db.session.scalar(select(func.count()).select_from(Stock))
    with app.test_client().get("/stock") as response:
        assert response.is_streamed and response.mimetype == "text/html"
        chunks = list(response.response)
    assert sum(chunk.count(b"<tr>") for chunk in chunks) == count
    assert chunks[0] == b"<table>\n" and chunks[-1] == b"</table>\n"


@pytest.mark.parametrize("path", ["/stock", "/stock-first", "/stock-loaded"])
def test_head_on_every_route_is_answered_like_get(warm, path):
    client = app.test_client()
    head, get = client.head(path), client.get(path)
    assert (head.status_code, head.data) == (200, b"")
    assert head.mimetype == get.mimetype
    get.close()
