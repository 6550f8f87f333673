"""The Stock table with Flask-SQLAlchemy: queried in the generator, in batches."""

# [recipe]
import os

from flask import Flask, Response, stream_with_context
from flask_sqlalchemy import SQLAlchemy
from markupsafe import escape
from sqlalchemy import ForeignKey, select
from sqlalchemy.orm import (
    Mapped,
    joinedload,
    mapped_column,
    relationship,
)

app = Flask(__name__)
# sqlite:///name lands in app.instance_path; PostgreSQL:
# DATABASE_URL=postgresql+psycopg://user:password@host/name
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get(
    "DATABASE_URL", "sqlite:///flask_sqlalchemy_stock.sqlite3"
)
db = SQLAlchemy(app)


class Supplier(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


class Stock(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str]
    quantity: Mapped[int]
    supplier_id: Mapped[int] = mapped_column(ForeignKey("supplier.id"))
    supplier: Mapped[Supplier] = relationship()  # lazy


@app.get("/stock")
def stock(limit=None):
    # Build the query in the view; run it in the generator.
    stmt = (
        select(Stock)
        .options(joinedload(Stock.supplier))  # one query
        .order_by(Stock.id)
        .limit(limit)  # None: every row
        .execution_options(yield_per=1000)  # 1,000 at a time
    )

    @stream_with_context  # db.session needs the app context
    def generate():
        yield "<table>\n"
        for batch in db.session.scalars(stmt).partitions():
            yield "".join(map(table_row, batch))
        yield "</table>\n"

    return Response(generate(), mimetype="text/html")


def table_row(s):
    return (
        f"<tr><td>{escape(s.sku)}</td><td>{s.quantity}</td>"
        f"<td>{escape(s.supplier.name)}</td></tr>\n"
    )


with app.app_context():
    db.create_all()  # the tables, if they are not there yet


# [recipe-end]

import click  # noqa: E402  (what follows: sample rows, and variants)
from sqlalchemy import func, insert  # noqa: E402

from snippets.checks import whole_number  # noqa: E402


def seed(rows=100_000):
    """Create the tables and the sample rows, once (call in an app context)."""
    db.create_all()
    if db.session.scalar(select(func.count()).select_from(Stock)):
        return
    suppliers = [{"id": i, "name": f"Supplier <{i}>"} for i in range(1, 51)]
    db.session.execute(insert(Supplier), suppliers)
    stock = [
        dict(id=i, sku=f"SKU-{i:06d}", quantity=i * 7 % 1000, supplier_id=i % 50 + 1)
        for i in range(1, rows + 1)
    ]
    db.session.execute(insert(Stock), stock)
    db.session.commit()


@app.cli.command("seed")
@click.option("--rows", default=100_000, help="How many Stock rows to create.")
def seed_command(rows):
    seed(rows)


@app.get("/stock-first")
def stock_first():
    """The first ``rows`` rows only: the same view, with a limit."""
    return stock(limit=whole_number("rows", 1, 200_000, default=1000))


# [loaded]
@app.get("/stock-loaded")
def stock_loaded():
    items = Stock.query.order_by(Stock.id).limit(3).all()  # the usual view

    @stream_with_context
    def generate():
        yield "Stock\n"
        for item in items:
            yield f"{item.sku} from {item.supplier.name}\n"  # a lazy load

    return Response(generate(), mimetype="text/plain")


# [loaded-end]
