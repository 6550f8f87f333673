"""Downloads: let send_file do sizes, caching, ranges and sendfile for you."""

# [recipe]
from pathlib import Path

from flask import Flask, abort, send_file

app = Flask(__name__)
app.config["FILES_DIR"] = str(Path(__file__).parent / "files")
app.config.from_prefixed_env()  # FLASK_FILES_DIR=/srv/files


def real_file(folder, name):
    """The real path of a plain file inside folder, or a 404."""
    folder = Path(folder).resolve()
    try:  # resolve() follows links: a link out is refused too
        path = (folder / name).resolve()
    except (RuntimeError, ValueError):  # a loop of links, a NUL
        abort(404)
    if not path.is_relative_to(folder) or not path.is_file():
        abort(404)  # "../", outside, missing, a folder, a FIFO
    return path


@app.get("/files/<path:name>")
def download(name):
    # Length, ETag, Last-Modified, 304, Range, sendfile.
    return send_file(real_file(app.config["FILES_DIR"], name))


# [recipe-end]

from urllib.parse import quote  # noqa: E402  (the variants below)

from flask import Response, request  # noqa: E402


# [chunks]
@app.get("/chunks/<path:name>")
def chunks(name):
    path = real_file(app.config["FILES_DIR"], name)

    def generate():
        with open(path, "rb") as file:
            while chunk := file.read(64 * 1024):
                yield chunk

    return Response(generate(), mimetype="application/octet-stream")


# [chunks-end]


# [accel]
@app.get("/protected/<path:name>")
def protected(name):
    if request.headers.get("Authorization") != "Bearer let-me-in":
        abort(403, "this file needs a valid token")
    # The real path, relative to the folder: "a/../b" becomes "b".
    folder = Path(app.config["FILES_DIR"]).resolve()
    name = real_file(folder, name).relative_to(folder).as_posix()
    # nginx sees the header, drops this empty body and sends the file itself.
    response = Response(headers={"X-Accel-Redirect": "/_protected/" + quote(name)})
    del response.headers["Content-Type"]  # let nginx pick it from the file name
    return response


# [accel-end]
