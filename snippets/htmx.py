"""A live view for htmx: the server streams HTML fragments as server-sent
events; htmx swaps each into its place. htmx 2 with htmx-ext-sse, and
htmx 4's hx-sse extension (which also streams the answer to a POST)."""

# [recipe]
import time
from collections import deque
from pathlib import Path

from flask import Flask, Response, render_template, request
from markupsafe import escape

app = Flask(__name__)

TICK_SECONDS = 1.0
notes = deque(["hello"], maxlen=100)  # your data source


def event(name, html):
    # A data: field per line: a line break cannot end the event.
    lines = [f"data: {line}\n" for line in html.splitlines()]
    head = f"event: {name}\n" if name else ""
    return head + "".join(lines) + "\n"


@app.get("/feed")
def feed():
    def generate():
        n = 0
        while True:
            n += 1
            yield event("count", f"<b>{n}</b>")
            # escape(): users' text stays text, never markup.
            note = escape(notes[-1])
            yield event("note", f"<i>{note}</i>")
            time.sleep(TICK_SECONDS)

    return Response(
        generate(),
        mimetype="text/event-stream",
        # No cache keeps it; nginx passes each event on at once.
        headers={
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        },
    )


@app.post("/notes")
def add_note():
    notes.append(request.form.get("text", "")[:200])
    return "", 204


@app.get("/")
def page():
    return render_template("htmx_2.html")


# [recipe-end]

from flask import send_from_directory  # noqa: E402

from snippets.sse import STREAM_HEADERS  # noqa: E402

VENDOR = Path(__file__).parent.parent / "docs" / "_static" / "vendor"


# [htmx4]
@app.get("/feed4")
def feed4():
    """htmx 4 swaps unnamed messages only: each one carries both
    fragments, placed by id with hx-swap-oob."""

    def generate():
        n = 0
        while True:
            n += 1
            count = oob("count", f"<b>{n}</b>")
            note = oob("note", f"<i>{escape(notes[-1])}</i>")
            yield event(None, count + note)
            time.sleep(TICK_SECONDS)

    return Response(generate(), mimetype="text/event-stream", headers=STREAM_HEADERS)


def oob(id, html):
    return f'<span id="{id}" hx-swap-oob="true">{html}</span>'


@app.post("/ask")
def ask():
    """A POST whose answer streams: each message replaces the target."""
    question = request.form.get("question", "")[:200]

    def generate():
        words = [f"You asked: {escape(question)}."] + ["word"] * 3
        for n in range(1, len(words) + 1):
            yield event(None, " ".join(words[:n]))
            time.sleep(TICK_SECONDS / 10)

    return Response(generate(), mimetype="text/event-stream", headers=STREAM_HEADERS)


# [htmx4-end]


@app.get("/htmx4")
def page4():
    return render_template("htmx_4.html")


@app.get("/vendor/<path:name>")
def vendor(name):
    return send_from_directory(VENDOR, name)
