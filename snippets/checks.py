"""Checks every snippet shares: bounded whole numbers from a request (one
line in a view, a 400 with a clear message before the stream starts), and
the secret key that signs session cookies.

Every snippet reads its numbers through :func:`whole_number`, so a view
opens with its pattern, not with parsing::

    n = whole_number("n", 1, 10_000, default=3)
"""

import os
import secrets

from flask import abort, request


# [whole-number]
def whole_number(name, low, high, default=None, *, source="args"):
    """``name`` from the query string (``source="form"`` or ``"headers"`` for
    the others) as an int from ``low`` to ``high``; ``default`` when it is
    absent. Anything else ends the request with a 400 that names the range.

    Only ASCII digits count: :class:`int` alone would also read ``" 3"``,
    ``"+3"``, ``"1_000"`` and other scripts' digits, and raises on a string
    of more than 4,300 digits (a 400 here, never a 500).
    """
    raw = getattr(request, source).get(name)
    if raw is None and default is not None:
        return default
    # isdecimal() alone is true for other scripts' digits; int() reads at
    # most 4,300 digits.
    digits = raw and raw.isascii() and raw.isdecimal() and len(raw) <= 4300
    if digits and low <= (number := int(raw)) <= high:
        return number
    abort(400, f"{name} must be a whole number from {low:,} to {high:,}")


# [whole-number-end]


# [secret-key]
def secret_key():
    """The key that signs session cookies: ``FLASK_SECRET_KEY`` from the
    environment. Under ``flask run --debug`` without one, a random key
    (sessions end with the process). Anything else refuses to start: a key
    written in the code signs cookies that anyone who reads it can forge.
    """
    if key := os.environ.get("FLASK_SECRET_KEY"):
        return key
    if os.environ.get("FLASK_DEBUG", "").lower() in {"1", "true"}:
        return secrets.token_hex()
    raise RuntimeError(
        "set FLASK_SECRET_KEY, e.g. to the output of"
        " python -c 'import secrets; print(secrets.token_hex())'"
    )


# [secret-key-end]
