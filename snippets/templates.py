"""Streaming templates: the page goes out while the template renders."""

from flask import (
    Flask,
    Response,
    abort,
    request,
    stream_template,
    stream_template_string,
    stream_with_context,
)

app = Flask(__name__)

MAX_ROWS = 100_000


def parse_rows(default=5):
    raw = request.args.get("rows", str(default))
    try:
        rows = int(raw)
    except ValueError:
        abort(400, f"rows must be a whole number from 1 to {MAX_ROWS:,}")
    if not (raw.isascii() and raw.isdecimal()) or not 1 <= rows <= MAX_ROWS:
        abort(400, f"rows must be a whole number from 1 to {MAX_ROWS:,}")
    return rows


def readings(count):
    """Rows produced lazily, as a database cursor would."""
    for i in range(1, count + 1):
        yield {"id": i, "label": "<script>alert(1)</script>" if i == 2 else f"r{i}"}


# [report]
@app.get("/report")
def report():
    rows = parse_rows()
    # stream_template wraps the render in stream_with_context for you.
    return stream_template("report.html", rows=readings(rows))


# [report-end]


# [inline]
@app.get("/inline")
def inline():
    source = "{% for x in items %}<li>{{ x }}</li>{% endfor %}"
    return stream_template_string(source, items=request.args.getlist("item"))


# [inline-end]


# [buffered]
@app.get("/buffered")
def buffered():
    rows = parse_rows(default=50)
    template = app.jinja_env.get_template("report.html")
    stream = template.stream(rows=readings(rows))
    stream.enable_buffering(size=20)  # group 20 template pieces per chunk
    return Response(stream_with_context(stream), mimetype="text/html")


# [buffered-end]
