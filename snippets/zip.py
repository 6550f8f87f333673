"""A ZIP archive built while it downloads, with zipstream-ng."""

# [recipe]
from pathlib import Path

from flask import Flask, Response
from zipstream import ZipStream

app = Flask(__name__)

FILES_DIR = Path(__file__).resolve().parent  # what to zip
CHUNK_SIZE = 64 * 1024  # bytes per write, at least


@app.get("/files.zip")
def files_zip():
    archive = ZipStream(sized=True)  # stored: size known
    for name, path in sorted(on_offer().items()):
        archive.add_path(path, name)
    headers = {
        "Content-Type": "application/zip",
        "Content-Length": str(len(archive)),
        "Content-Disposition": "attachment; filename=files.zip",
    }
    return Response(regroup(archive), headers=headers)


def on_offer():
    """The .py files in FILES_DIR by name: regular files
    only, no symlink out of the folder, no FIFO or device
    (reading one could block, or never end)."""
    offered, folder = {}, FILES_DIR.resolve()
    for path in folder.glob("*.py"):
        real = path.resolve()
        if real.parent == folder and real.is_file():
            offered[path.name] = real
    return offered


def regroup(chunks, size=CHUNK_SIZE):
    """Join small chunks until each is at least ``size``
    bytes (but the last): zipstream-ng yields small headers
    and one piece per item a generator member yields, often
    empty. Sent as they are, each would be its own write."""
    buffer = bytearray()
    for chunk in chunks:
        if not buffer and len(chunk) >= size:
            yield chunk  # already big enough: no copy
            continue
        buffer += chunk
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


# [recipe-end]

from zipfile import ZIP_DEFLATED  # noqa: E402

from flask import abort, request  # noqa: E402

from snippets.checks import whole_number  # noqa: E402

MAX_FILES = 20
MAX_ROWS = 1_000_000


def squares_csv(rows):
    """A member that exists nowhere on disk: produced while it is zipped."""
    yield b"n,square\n"
    for n in range(1, rows + 1):
        yield b"%d,%d\n" % (n, n * n)


# [build]
def build_zip(files=(), generated=(), *, compress_type=ZIP_DEFLATED):
    """files: (name, path) pairs; generated: (name, iterable of bytes) pairs."""
    if generated:
        # A generator's size is unknown until it ends: no Content-Length.
        archive = ZipStream(compress_type=compress_type)
    else:
        # Every size is known (stat), so zipstream-ng can compute the total,
        # as long as nothing is compressed.
        archive = ZipStream(sized=True)
    for name, path in files:
        archive.add_path(path, name)
    for name, chunks in generated:
        archive.add(chunks, name)
    return archive


# [build-end]


# [view]
@app.get("/bundle.zip")
def bundle():
    offered = on_offer()
    names = request.args.getlist("file")
    if len(names) > MAX_FILES or len(set(names)) != len(names):
        abort(400, f"ask for at most {MAX_FILES} different files")
    for name in names:
        # A whitelist, not a path: "../conftest.py" is simply not on offer.
        if name not in offered:
            abort(404, f"no file named {name!r} is on offer")
    rows = whole_number("rows", 1, MAX_ROWS, default=0)  # 0: no generated member
    if not names and not rows:
        abort(400, "ask for at least one file or for rows")

    generated = [("squares.csv", squares_csv(rows))] if rows else []
    archive = build_zip([(name, offered[name]) for name in names], generated)
    headers = {"Content-Disposition": 'attachment; filename="bundle.zip"'}
    if archive.sized:
        headers["Content-Length"] = str(len(archive))
    return Response(regroup(archive), mimetype="application/zip", headers=headers)


# [view-end]
