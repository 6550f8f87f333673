"""Errors after the first byte: what the client gets, and how to tell it."""

import json

import httpx
from flask import Flask, Response, abort, request

app = Flask(__name__)

CITIES = {"oslo": ["Grünerløkka", "Frogner"], "lima": ["Miraflores", "Barranco"]}


# [broken]
@app.errorhandler(500)
def internal_error(error):
    app.logger.warning("the 500 handler ran")
    return "sorry, something went wrong\n", 500


@app.get("/broken")
def broken():
    def generate():
        yield json.dumps({"district": "Frogner"}) + "\n"
        raise RuntimeError("the data source failed")

    return Response(generate(), mimetype="application/x-ndjson")


@app.get("/broken-early")
def broken_early():
    raise RuntimeError("the data source failed")  # before the stream: a real 500


# [broken-end]


def districts(city, fail_after):
    """The data source: fails after ``fail_after`` rows when asked to."""
    for number, name in enumerate(CITIES[city]):
        if number == fail_after:
            raise ConnectionError("lost the database connection")
        yield name


# [records]
@app.get("/cities/<city>")
def city_districts(city):
    # Everything that can be checked is checked before the stream starts.
    if city not in CITIES:
        abort(404, f"unknown city {city!r}; known: {', '.join(sorted(CITIES))}")
    raw = request.args.get("fail_after", "-1")  # -1: never
    try:  # "--1" or 5,000 digits raise ValueError
        fail_after = int(raw)
    except ValueError:
        abort(400, "fail_after must be a whole number")
    if not (raw.isascii() and raw.removeprefix("-").isdecimal()):
        abort(400, "fail_after must be a whole number")  # int() also reads "+1"

    def generate():
        sent = 0
        try:
            for name in districts(city, fail_after):
                yield json.dumps({"district": name}) + "\n"
                sent += 1
        except Exception:
            app.logger.exception("stream of %s failed after %d records", city, sent)
            yield json.dumps({"error": "the district list is incomplete"}) + "\n"
            return
        yield json.dumps({"end": True, "count": sent}) + "\n"

    return Response(generate(), mimetype="application/x-ndjson")


# [records-end]


# [client]
class IncompleteStream(Exception):
    """The stream ended without an end record: the data is not all there."""


def read_districts(url, client=httpx):
    """Return the district names, or raise if the stream is not complete."""
    names = []
    try:
        with client.stream("GET", url, timeout=10) as response:
            response.raise_for_status()  # 4xx/5xx before the stream started
            for line in response.iter_lines():
                record = json.loads(line)
                if "error" in record:
                    raise IncompleteStream(f"server said: {record['error']}")
                if "end" in record:
                    if record["count"] != len(names):
                        raise IncompleteStream("record count does not match")
                    return names
                names.append(record["district"])
    except httpx.RemoteProtocolError as exc:  # connection cut mid-body
        raise IncompleteStream(f"connection broke after {len(names)} records") from exc
    raise IncompleteStream(f"no end record after {len(names)} records")


# [client-end]
