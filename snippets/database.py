"""A large HTML table streamed from a database, row by row, in flat memory.
snippets/database_stock.py is the fuller version the page explains."""

# [recipe]
import sqlalchemy as sa
from flask import Flask, Response
from markupsafe import escape
from sqlalchemy.pool import StaticPool

app = Flask(__name__)

YIELD_PER = 1000  # rows fetched from the database at a time
CHUNK_SIZE = 64 * 1024  # characters per write

# Your database here. This one is SQLite in memory,
# shared by every thread (StaticPool), filled by seed().
engine = sa.create_engine(
    "sqlite://",
    poolclass=StaticPool,
    connect_args={"check_same_thread": False},
)
items = sa.Table(
    "items",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sku", sa.String),
    sa.Column("name", sa.String),
    sa.Column("quantity", sa.Integer),
)


@app.get("/items")
def item_table():
    query = sa.select(items).order_by(items.c.id)
    return Response(table(query), mimetype="text/html")


HEAD = "<!doctype html><title>Items</title><table>\n"
ROW = "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n"


def table(query):
    yield HEAD  # the page starts before the query runs
    query = query.execution_options(yield_per=YIELD_PER)
    # The generator's own connection: closed when the
    # table ends or the client leaves.
    with engine.connect() as conn:
        batch, size = [], 0
        for row in conn.execute(query):
            cells = (row.sku, row.name, row.quantity)
            html = ROW.format(*map(escape, cells))
            batch.append(html)
            size += len(html)
            if size >= CHUNK_SIZE:
                yield "".join(batch)
                batch, size = [], 0
    yield "".join(batch) + "</table>\n"


def seed(count):
    items.metadata.create_all(engine)
    insert = "INSERT INTO items VALUES (?, ?, ?, ?)"
    with engine.begin() as conn:
        conn.exec_driver_sql(insert, list(demo_items(count)))


def demo_items(count):
    """A name holds markup, to show it is escaped."""
    for i in range(1, count + 1):
        yield i, f"SKU-{i:06d}", f"Item <{i}>", i * 7 % 1000


seed(10_000)
# [recipe-end]
