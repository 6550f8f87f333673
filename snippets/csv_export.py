"""A large CSV export streamed row by row, quoted, guarded and batched."""

import csv
import unicodedata
from datetime import date

from flask import Flask, Response, abort, request
from werkzeug.utils import secure_filename

app = Flask(__name__)

MAX_ROWS = 1_000_000
CHUNK_SIZE = 64 * 1024  # regroup rows: one small write per row is slow
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list
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
def looks_like_formula(text):
    """True if a spreadsheet might read ``text`` as a formula: it starts with
    one of FORMULA_PREFIXES, or does once look-alikes become plain (NFKC makes
    U+FF1D FULLWIDTH EQUALS SIGN "=") and leading spaces and invisible
    characters (NBSP, zero-width space, BOM) are removed.

    >>> looks_like_formula("=1+1"), looks_like_formula("\ufeff \uff1d1+1")
    (True, True)
    """
    plain, start = unicodedata.normalize("NFKC", text), 0
    while start < len(plain) and (
        plain[start].isspace() or unicodedata.category(plain[start]) == "Cf"
    ):
        start += 1
    return text.startswith(FORMULA_PREFIXES) or plain.startswith(
        FORMULA_PREFIXES, start
    )


def neutralise(value):
    """Stop a spreadsheet from running a cell as a formula.

    >>> neutralise("=1+1"), neutralise("-2"), neutralise(-2), neutralise("ok")
    ("'=1+1", "'-2", -2, 'ok')
    """
    if isinstance(value, str) and looks_like_formula(value):
        return "'" + value
    return value


# [guard-end]


# [writer]
class WriteThrough:
    """A file-like object whose write() returns what it was given."""

    def write(self, text):
        return text


def csv_chunks(rows, chunk_size=CHUNK_SIZE):
    # The default line end, "\r\n": csv quotes a value that holds a character
    # of its line end, so with "\n" alone a bare "\r" would go out unquoted.
    writer = csv.writer(WriteThrough())
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
    try:
        rows = int(raw)
    except ValueError:
        abort(400, f"rows must be a whole number from 1 to {MAX_ROWS:,}")
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= rows <= MAX_ROWS:
        abort(400, f"rows must be a whole number from 1 to {MAX_ROWS:,}")
    name = secure_filename(request.args.get("name", "")) or "export"
    filename = f"{name}-{date.today().isoformat()}.csv"
    return Response(
        csv_chunks(fetch_rows(rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# [view-end]
