"""NDJSON and a streamed JSON array: one record at a time, valid either way."""

# [recipe]
import json

from flask import Flask, Response

app = Flask(__name__)

ROWS = 1000  # how many records /export.ndjson sends


@app.get("/export.ndjson")
def export():
    lines = (dumps(record) + "\n" for record in records(ROWS))
    return Response(lines, mimetype="application/x-ndjson")


def dumps(record):
    # Compact, and UTF-8 as it is: JSON text is UTF-8 (RFC 8259),
    # so "ë" needs no \u00eb escape. json.dumps always escapes
    # "\n" inside strings: one record is always one line.
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def records(count):
    """Stand-in for a query; the notes hold a newline, an accent and U+2028.

    >>> next(records(1))
    {'id': 1, 'name': 'Zoë', 'note': 'line one\\nline two\\u2028end'}
    """
    for i in range(1, count + 1):
        yield {"id": i, "name": "Zoë", "note": "line one\nline two\u2028end"}


# [recipe-end]

import codecs  # noqa: E402
import re  # noqa: E402

from snippets.checks import whole_number  # noqa: E402

MAX_COUNT = 100_000
NUMBER_CUT = re.compile(r"(\.|[eE][+-]?)\Z")  # "1." or "1e+" may go on: "1.5"


# [ndjson]
@app.get("/items.ndjson")
def items_ndjson():
    count = whole_number("count", 0, MAX_COUNT, default=3)
    lines = (dumps(record) + "\n" for record in records(count))
    return Response(lines, mimetype="application/x-ndjson")


# [ndjson-end]


# [array]
@app.get("/items.json")
def items_json():
    count = whole_number("count", 0, MAX_COUNT, default=3)

    def generate():
        yield "["
        for index, record in enumerate(records(count)):
            yield ("," if index else "") + dumps(record)
        yield "]"

    return Response(generate(), mimetype="application/json")


# [array-end]


# [read-ndjson]
def iter_ndjson(chunks):
    """Yield each record of an NDJSON body as soon as its line is complete."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        # Split bytes on b"\n" only: str.splitlines() would also split on the
        # raw U+2028 that ensure_ascii=False leaves inside a string.
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
    if buffer.strip():
        yield json.loads(buffer)


# [read-ndjson-end]


# [read-array]
def iter_json_array(chunks):
    """Yield the elements of a JSON array as its bytes arrive."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()  # a chunk may split "ë"
    text, opened = "", False
    for chunk in chunks:
        text += utf8.decode(chunk)
        while text := text.lstrip():
            if not opened:
                if text[0] != "[":
                    raise ValueError("the body is not a JSON array")
                text, opened = text[1:], True
                continue
            if text[0] == "]":
                return
            try:
                value, end = decoder.raw_decode(text)
            except json.JSONDecodeError:
                break  # an element cut in two: wait for the next chunk
            rest = text[end:].lstrip()
            if not rest or (isinstance(value, (int, float)) and NUMBER_CUT.match(rest)):
                break  # "12" could still become "123", "1." become "1.5"
            if rest[0] not in ",]":
                raise ValueError(f"expected ',' or ']', got {rest[0]!r}")
            yield value
            text = rest[1:] if rest[0] == "," else rest
    raise ValueError("the JSON array is incomplete")


# [read-array-end]
