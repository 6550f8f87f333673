"""A large HTML table streamed from SQLite through SQLAlchemy, row by row."""

import os
import tempfile
from functools import cache
from itertools import islice
from pathlib import Path

from flask import Flask, Response, abort, request
from sqlalchemy import ForeignKey, create_engine, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from snippets.checks import whole_number

app = Flask(__name__)
# The sample database: a file in the temporary folder (TMPDIR), or STOCK_DB.
app.config["STOCK_DB"] = os.environ.get("STOCK_DB") or os.path.join(
    tempfile.gettempdir(), "stock.sqlite3"
)

SAMPLE_ROWS = 100_000
CHUNK_SIZE = 64 * 1024
WAREHOUSES = ("Leeds", "Lyon", "Porto", "Turin")


@cache
def engine_for(path):
    return create_engine(f"sqlite:///{path}")  # connects on first use only


class Base(DeclarativeBase):
    pass


class Supplier(Base):
    __tablename__ = "supplier"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str]
    name: Mapped[str]
    warehouse: Mapped[str] = mapped_column(index=True)
    quantity: Mapped[int]
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"))
    supplier: Mapped[Supplier] = relationship()  # lazy: loaded on access


# [create]
def create_sample_database(path, rows=SAMPLE_ROWS):
    """Build the sample database once; safe when two requests race."""
    path = Path(path)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    # Build a private file, then link it into place: os.link fails if the
    # name exists, so the first builder wins and nobody sees half a database.
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".building")
    os.close(fd)
    try:
        builder = create_engine(f"sqlite:///{tmp}")
        with builder.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")  # stored in the file
        Base.metadata.create_all(builder)
        with builder.begin() as conn:
            suppliers = [{"id": i, "name": f"Supplier <{i}>"} for i in range(1, 51)]
            conn.execute(insert(Supplier), suppliers)
            items = (
                {
                    "id": i,
                    "sku": f"SKU-{i:06d}",
                    "name": f"Item {i}",
                    "warehouse": WAREHOUSES[i % len(WAREHOUSES)],
                    "quantity": i * 7 % 1000,
                    "supplier_id": i % 50 + 1,
                }
                for i in range(1, rows + 1)
            )
            while batch := list(islice(items, 10_000)):
                conn.execute(insert(Item), batch)
        builder.dispose()
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False  # another request finished first: use its file
        return True
    finally:
        os.unlink(tmp)  # built or failed half-way, the private file goes


# [create-end]


# [query]
def stock_query(warehouse, limit):
    # Columns, not ORM objects: plain rows that need no session later.
    columns = Item.id, Item.sku, Item.name, Item.warehouse, Item.quantity
    stmt = select(*columns, Supplier.name.label("supplier")).join(Item.supplier)
    if warehouse is not None:
        stmt = stmt.where(Item.warehouse == warehouse)
    return stmt.order_by(Item.id).limit(limit)


# [query-end]


# [render]
def render_table(engine, stmt, title):
    macros = app.jinja_env.get_template("stock_table.html").module
    yield str(macros.head(title))  # the page starts before the query runs
    # The generator's own connection: opened when the body is iterated,
    # closed when it ends or the client goes away.
    with engine.connect() as conn:
        rows = conn.execute(stmt.execution_options(yield_per=1000))
        batch, size = [], 0
        for row in rows:
            html = str(macros.row(row))  # one small template per row
            batch.append(html)
            size += len(html)
            if size >= CHUNK_SIZE:
                yield "".join(batch)
                batch, size = [], 0
    yield "".join(batch) + str(macros.foot())


# [render-end]


# [view]
@app.get("/stock")
def stock():
    rows = whole_number("rows", 1, SAMPLE_ROWS, default=1000)
    warehouse = request.args.get("warehouse")
    if warehouse is not None and warehouse not in WAREHOUSES:
        abort(404, f"no warehouse {warehouse!r}; choose from {', '.join(WAREHOUSES)}")
    create_sample_database(app.config["STOCK_DB"])
    engine = engine_for(app.config["STOCK_DB"])
    stmt = stock_query(warehouse, rows)
    title = f"Stock in {warehouse}" if warehouse else "Stock"
    return Response(render_table(engine, stmt, title), mimetype="text/html")


# [view-end]
