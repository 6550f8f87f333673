"""Rows from SQLite through SQLAlchemy, three ways: what each costs in memory."""

import sqlite3

from sqlalchemy import Float, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from snippets.csv_export import fetch_rows

YIELD_PER = 1000
MODES = ("all", "yield_per", "core")


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer: Mapped[str] = mapped_column(String(50))
    note: Mapped[str] = mapped_column(String(50))
    amount: Mapped[float] = mapped_column(Float)


def create_database(path, rows):
    """Fill a SQLite file with ``rows`` rows (plain sqlite3: fast and flat)."""
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    engine.dispose()
    with sqlite3.connect(path) as connection:
        connection.executemany(
            "INSERT INTO rows (id, customer, note, amount) VALUES (?, ?, ?, ?)",
            fetch_rows(rows),
        )
    connection.close()


# [query]
def query(path, mode, limit=None):
    """Read every row and touch each value; return how many rows were read."""
    engine = create_engine(f"sqlite:///{path}")
    count = 0
    if mode == "core":  # Row tuples, no objects, no identity map
        with engine.connect() as connection:
            for row in connection.execute(select(Row.__table__).limit(limit)):
                count += len(row.note) > 0
    else:
        statement = select(Row).limit(limit)
        if mode == "yield_per":  # ORM objects, built and dropped in batches
            statement = statement.execution_options(yield_per=YIELD_PER)
        with Session(engine) as session:
            result = session.scalars(statement)
            rows = result.all() if mode == "all" else result  # .all(): every one
            for row in rows:
                count += len(row.note) > 0
    engine.dispose()
    return count


# [query-end]
