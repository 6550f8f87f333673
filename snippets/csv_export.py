"""A large CSV export streamed row by row, quoted, guarded and batched."""

import csv
from datetime import date

from flask import Flask, Response, abort, request
from werkzeug.utils import secure_filename

app = Flask(__name__)

MAX_ROWS = 1_000_000
CHUNK_SIZE = 64 * 1024  # regroup rows: one small write per row is slow
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
HEADER = ["id", "customer", "note", "amount"]


def fetch_rows(count):
    """Stand-in for a database cursor: values with commas, quotes, newlines.

    >>> next(fetch_rows(1))
    (1, 'Ada, Countess', 'said "hi"\\nthen left', 10.5)
    """
    notes = ['said "hi"\nthen left', '=HYPERLINK("http://x")', "plain", "@SUM(A1)"]
    for i in range(1, count + 1):
        yield i, "Ada, Countess", notes[(i - 1) % len(notes)], i * 10.5


# [guard]
def neutralise(value):
    """Stop a spreadsheet from running a cell as a formula.

    >>> neutralise("=1+1"), neutralise("-2"), neutralise(-2), neutralise("ok")
    ("'=1+1", "'-2", -2, 'ok')
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


# [guard-end]


# [writer]
class WriteThrough:
    """A file-like object whose write() returns what it was given."""

    def write(self, text):
        return text


def csv_chunks(rows, chunk_size=CHUNK_SIZE):
    writer = csv.writer(WriteThrough(), lineterminator="\n")
    batch, size = [writer.writerow(HEADER)], 0
    for row in rows:
        line = writer.writerow([neutralise(value) for value in row])
        batch.append(line)
        size += len(line)
        if size >= chunk_size:
            yield "".join(batch)
            batch, size = [], 0
    if batch:
        yield "".join(batch)


# [writer-end]


# [view]
@app.get("/export.csv")
def export():
    raw = request.args.get("rows", "1000")
    # ASCII digits only, and short: int() refuses strings of over 4,300 digits.
    short = raw.isascii() and raw.isdecimal() and len(raw) <= len(str(MAX_ROWS))
    if not short or not 1 <= int(raw) <= MAX_ROWS:
        abort(400, f"rows must be a whole number from 1 to {MAX_ROWS:,}")
    rows = int(raw)
    name = secure_filename(request.args.get("name", "")) or "export"
    filename = f"{name}-{date.today().isoformat()}.csv"
    return Response(
        csv_chunks(fetch_rows(rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# [view-end]
