"""Streams for API tokens: the token travels in a header, never in a URL.
EventSource gets a short-lived, single-use ticket for its URL; a fetch-based
client sends ``Authorization`` itself and resumes with ``Last-Event-ID``."""

import os
import secrets
import threading
import time
from pathlib import Path

from flask import Flask, Response, abort, render_template, request, send_from_directory
from flask_cors import CORS

from snippets.checks import whole_number
from snippets.sse import STREAM_HEADERS, encode

app = Flask(__name__)

TICK_SECONDS = 1.0
TICKET_SECONDS = 30  # a ticket opens one stream within this time
MAX_TICKETS = 10_000  # outstanding tickets: more is a 503, not memory
MAX_EVENTS = 1_000_000
VENDOR = Path(__file__).parent.parent / "docs" / "_static" / "vendor"

tokens = {}  # long-lived API token -> user (your token store)
tickets = {}  # ticket -> (token, expiry on the monotonic clock)
lock = threading.Lock()


# [bearer]
def bearer_token():
    """The token of ``Authorization: Bearer <token>``, or a 401."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token not in tokens:
        abort(401)
    return token


@app.get("/events/bearer")
def bearer_events():
    after = whole_number("Last-Event-ID", 0, MAX_EVENTS, default=0, source="headers")
    limit = whole_number("limit", 1, MAX_EVENTS, default=MAX_EVENTS)
    return stream(bearer_token(), after, limit)


# [bearer-end]

# [bearer-cors]
# Another origin may call it with a token: no cookies, so no credentials.
# Authorization makes the browser send a preflight (OPTIONS) first.
CORS(
    app,
    resources={r"/events/bearer": {}},
    origins=os.environ.get("FRONT_END_ORIGINS", "").split(),
    allow_headers=["Authorization", "Last-Event-ID"],
)
# [bearer-cors-end]


# [ticket]
@app.post("/ticket")
def ticket():
    token = bearer_token()  # the long-lived token, in a header
    now = time.monotonic()
    with lock:
        for old in [t for t, (_, end) in tickets.items() if end < now]:
            del tickets[old]
        if len(tickets) >= MAX_TICKETS:
            abort(503)
        tickets[new := secrets.token_urlsafe()] = (token, now + TICKET_SECONDS)
    return {"ticket": new, "expires_in": TICKET_SECONDS}


@app.get("/events")
def ticket_events():
    with lock:  # pop: a ticket opens one stream, once
        token, end = tickets.pop(request.args.get("ticket", ""), (None, 0))
    if end < time.monotonic() or token not in tokens:
        abort(401)
    return stream(token, 0, MAX_EVENTS)


# [ticket-end]


def stream(token, after, limit):
    user = tokens[token]

    def generate():
        n = after
        while token in tokens and n < after + limit:  # revoked: it ends
            n += 1
            yield encode(f"{user} #{n}", id=n)
            time.sleep(TICK_SECONDS)

    return Response(generate(), mimetype="text/event-stream", headers=STREAM_HEADERS)


@app.post("/token")
def issue_token():
    """A long-lived API token for a user and the demo password."""
    password = os.environ.get("DEMO_PASSWORD")
    given = request.form.get("password", "")
    if not password or not secrets.compare_digest(given, password):
        abort(401)
    user = request.form.get("user", "")
    if not (user.isascii() and user.isalnum() and len(user) <= 40):
        abort(400, "user must be 1 to 40 letters or digits")
    if len(tokens) >= MAX_TICKETS:
        abort(503)
    tokens[token := secrets.token_urlsafe()] = user
    return {"token": token}


@app.post("/revoke")
def revoke():
    tokens.pop(bearer_token(), None)
    return {"revoked": True}


@app.get("/")
def demo():
    return render_template("sse_auth_fetch.html")


@app.get("/vendor/<path:name>")
def vendor(name):
    return send_from_directory(VENDOR, name)
