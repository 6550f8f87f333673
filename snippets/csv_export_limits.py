"""The CSV export of snippets/csv_export.py with a row limit and a file name
from the query string, each checked before the stream starts."""

from datetime import date

from flask import Flask, Response, request
from werkzeug.utils import secure_filename

from snippets.checks import whole_number
from snippets.csv_export import MAX_ROWS, csv_chunks, database_rows, orders

app = Flask(__name__)


# [view]
@app.get("/export.csv")
def export():
    rows = whole_number("rows", 1, MAX_ROWS, default=1000)
    name = secure_filename(request.args.get("name", "")) or "export"
    filename = f"{name}-{date.today().isoformat()}.csv"
    query = orders.select().order_by(orders.c.id).limit(rows)
    return Response(
        csv_chunks(database_rows(query)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# [view-end]
