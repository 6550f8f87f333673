"""Signed-in streams: the session cookie opens the stream, signing out ends
it, and another origin reads it only with credentials and an exact origin."""

# [recipe]
import os
import secrets
import time

from flask import Flask, Response, abort, request, session

app = Flask(__name__)
# Make one: python -c 'import secrets; print(secrets.token_hex())'
app.secret_key = os.environ["FLASK_SECRET_KEY"]

TICK_SECONDS = 1.0  # the stream writes this often
# Who is signed in now, checked before every write. With
# several workers, keep this set in Redis.
signed_in = set()


@app.get("/events")
def events():
    sid = session.get("sid")
    if sid not in signed_in:
        abort(401)  # a status, before the stream starts
    user = session["user"]

    def generate():
        n = 0
        while sid in signed_in:  # signed out: it ends
            n += 1
            yield f"id: {n}\ndata: {user} #{n}\n\n"
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


@app.post("/login")
def login():
    # Your own user store goes here.
    password = os.environ.get("DEMO_PASSWORD")
    given = request.form.get("password", "")
    if not (password and secrets.compare_digest(given, password)):
        abort(401)
    user = request.form.get("user", "")
    if not (user.isascii() and user.isalnum()) or len(user) > 40:
        abort(400, "user must be 1 to 40 letters or digits")
    session["sid"] = sid = secrets.token_urlsafe()
    session["user"] = user
    signed_in.add(sid)
    return {"user": session["user"]}


@app.post("/logout")
def logout():
    signed_in.discard(session.pop("sid", None))
    return {"user": None}


# [recipe-end]

# [cors]
from flask_cors import CORS  # noqa: E402

# Exact origins that may read the stream with the user's cookie,
# e.g. "https://app.example.com"; never "*".
FRONT_ENDS = os.environ.get("FRONT_END_ORIGINS", "").split()
CORS(app, origins=FRONT_ENDS, supports_credentials=True)
# [cors-end]
