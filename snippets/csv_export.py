"""A large CSV export streamed from a database: quoted, guarded, batched."""

# [recipe]
import csv
import unicodedata

import sqlalchemy as sa
from flask import Flask, Response
from sqlalchemy.pool import StaticPool

app = Flask(__name__)

CHUNK_SIZE = 64 * 1024  # characters per write
YIELD_PER = 1000  # rows fetched from the database at a time
HEADER = ["id", "customer", "note", "amount"]

# Your database here. This one is SQLite in memory,
# shared by every thread (StaticPool), filled by seed().
engine = sa.create_engine(
    "sqlite://",
    poolclass=StaticPool,
    connect_args={"check_same_thread": False},
)
orders = sa.Table(
    "orders",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer", sa.String),
    sa.Column("note", sa.String),
    sa.Column("amount", sa.Float),
)


@app.get("/orders.csv")
def orders_csv():
    query = sa.select(orders).order_by(orders.c.id)
    name = 'attachment; filename="orders.csv"'
    return Response(
        csv_chunks(database_rows(query)),
        mimetype="text/csv",
        headers={"Content-Disposition": name},
    )


def database_rows(query):
    """Rows as the database hands them over, YIELD_PER at a
    time; the connection closes when the download ends."""
    query = query.execution_options(yield_per=YIELD_PER)
    with engine.connect() as conn:
        yield from conn.execute(query)


class WriteThrough:
    """A file whose write() returns what it was given."""

    def write(self, text):
        return text


def csv_chunks(rows, chunk_size=CHUNK_SIZE):
    # csv's line end, "\r\n", makes it quote a bare "\r"
    # too: with "\n" alone, a "\r" would split the row.
    writer = csv.writer(WriteThrough())
    batch, size = [writer.writerow(HEADER)], 0
    for row in rows:
        line = writer.writerow([neutralise(v) for v in row])
        batch.append(line)
        size += len(line)
        if size >= chunk_size:
            yield "".join(batch)
            batch, size = [], 0
    if batch:
        yield "".join(batch)


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")  # OWASP


def looks_like_formula(text):
    """True if a spreadsheet might run ``text`` as a formula:
    it starts with a FORMULA_PREFIX, or does once look-alikes
    are made plain (NFKC makes a full-width U+FF1D "=") and
    leading spaces and invisible characters are skipped."""
    plain = unicodedata.normalize("NFKC", text)
    cat = unicodedata.category
    visible = "".join(c for c in plain if cat(c) != "Cf")
    starts = (text[:1], visible.lstrip()[:1])
    return any(c in FORMULA_PREFIXES for c in starts)


def neutralise(value):
    """A "'" in front of text that looks like a formula."""
    if isinstance(value, str) and looks_like_formula(value):
        return "'" + value
    return value


def demo_rows(count):
    """Commas, quotes, newlines and formulas, to export."""
    notes = ['said "hi"\nthen left', "plain", "@SUM(A1)"]
    notes.insert(1, '=HYPERLINK("http://x")')
    for i in range(1, count + 1):
        note = notes[(i - 1) % len(notes)]
        yield i, "Ada, Countess", note, i * 10.5


def seed(count):
    orders.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO orders VALUES (?, ?, ?, ?)",
            list(demo_rows(count)),
        )


seed(10_000)
# [recipe-end]

fetch_rows = demo_rows  # rows on the fly, as many as asked: no database
MAX_ROWS = 1_000_000  # a larger ?rows= is a 400 (csv_export_limits.py)
