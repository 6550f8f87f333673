"""What the first teardown closes before a streamed body starts: uploaded
files, and the connection a teardown function closes. Adds its routes to
snippets/lifecycle.py's app (lifecycle.py imports it)."""

import sqlite3

from flask import Response, abort, g, request, stream_with_context

from snippets.lifecycle import app

__all__ = ["app"]

app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024  # larger uploads get a 413


@app.teardown_appcontext
def close_db(exc):
    db = g.pop("db", None)  # pop, not g.db: safe when teardown runs twice
    if db is not None:
        db.close()


def get_db():
    if "db" not in g:
        g.db = sqlite3.connect(":memory:")
    return g.db


# [upload]
@app.post("/upload")
def upload():
    if "data" not in request.files:
        abort(400, "send the file in a multipart field named data")
    content = request.files["data"].read()  # read in the view, not the generator

    def generate():
        for line in content.splitlines(keepends=True):
            yield line.upper()

    return Response(generate(), mimetype="text/plain")


# [upload-end]


# Fails on purpose: the connection is closed before the body is made.
# [db]
@app.get("/db-captured")
def db_captured():
    db = get_db()  # closed by the teardown that runs when the view returns

    @stream_with_context
    def generate():
        yield f"{db.execute('SELECT 6 * 7').fetchone()[0]}\n"

    return Response(generate(), mimetype="text/plain")


@app.get("/db")
def database():
    @stream_with_context
    def generate():
        db = get_db()  # fetched where it is used: a fresh connection if needed
        yield f"{db.execute('SELECT 6 * 7').fetchone()[0]}\n"

    return Response(generate(), mimetype="text/plain")


# [db-end]
