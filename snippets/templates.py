"""Streaming templates: the page goes out while the template renders."""

# [recipe]
from flask import Flask, stream_template_string

app = Flask(__name__)

ROWS = 1000  # rows in the table

PAGE = """<!doctype html>
<title>Readings</title>
<table>
{%- for row in rows %}
  <tr><td>{{ row.id }}</td><td>{{ row.label }}</td></tr>
{%- endfor %}
</table>"""


def readings(count):
    """Rows made one at a time, like a database cursor."""
    for i in range(1, count + 1):
        yield {"id": i, "label": f"reading {i}"}


@app.get("/table")
def table():
    # Autoescaped, and the rows are rendered as they come.
    return stream_template_string(PAGE, rows=readings(ROWS))


# [recipe-end]

from flask import Response, request, stream_template, stream_with_context  # noqa: E402

from snippets.checks import whole_number  # noqa: E402

MAX_ROWS = 100_000


def labelled(count):
    """The same rows, the second with markup in its label."""
    for row in readings(count):
        if row["id"] == 2:
            row["label"] = "<script>alert(1)</script>"
        yield row


# [report]
@app.get("/report")
def report():
    rows = whole_number("rows", 1, MAX_ROWS, default=5)
    # stream_template wraps the render in stream_with_context for you.
    return stream_template("report.html", rows=labelled(rows))


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
    rows = whole_number("rows", 1, MAX_ROWS, default=50)
    template = app.jinja_env.get_template("report.html")
    stream = template.stream(rows=labelled(rows))
    stream.enable_buffering(size=20)  # group 20 template pieces per chunk
    return Response(stream_with_context(stream), mimetype="text/html")


# [buffered-end]
