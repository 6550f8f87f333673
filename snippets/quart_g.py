"""Quart's ``g`` in a streamed body (pallets/quart#361): read it in the
view and hand the values to the generator.

Serve it with an ASGI server: ``hypercorn snippets.quart_g:app``.
"""

from quart import Quart, Response, g, request, stream_with_context

app = Quart(__name__)


@app.before_request
async def remember_user():
    # What your auth code would put on g (untrusted here: shown as text).
    g.user = request.headers.get("X-User", "guest")[:40]


# [g]
@app.get("/greeting")
async def greeting():
    user = g.user  # read g in the view: the body gets a new, empty g

    @stream_with_context  # request still works in the body
    async def body():
        yield f"Hello, {user}\n"
        yield f"You asked for {request.path}\n"

    return Response(body(), mimetype="text/plain")


# [g-end]


@app.get("/greeting-broken")
async def greeting_broken():
    @stream_with_context  # carries request, but not g (Quart 0.22.0)
    async def body():
        yield f"Hello, {g.get('user')}\n"

    return Response(body(), mimetype="text/plain")
