"""Errors after the first byte: what the client gets, and how to tell it."""

# [recipe]
import json

from flask import Flask, Response

app = Flask(__name__)


def load_districts():
    """Your query or API call: it may fail half-way."""
    yield from ["Grünerløkka", "Frogner"]


def with_end_record(names):
    """NDJSON lines, then one end or error record."""
    sent = 0
    try:
        for name in names:
            yield json.dumps({"district": name}) + "\n"
            sent += 1
    except Exception:  # too late for a 500: say it in-band
        app.logger.exception("failed after %d records", sent)
        error = {"error": "the district list is incomplete"}
        yield json.dumps(error) + "\n"
        return
    yield json.dumps({"end": True, "count": sent}) + "\n"


@app.get("/districts")
def district_list():
    body = with_end_record(load_districts())
    return Response(body, mimetype="application/x-ndjson")


# [recipe-end]

import httpx  # noqa: E402
from flask import abort  # noqa: E402

from snippets.checks import whole_number  # noqa: E402

CITIES = {"oslo": ["Grünerløkka", "Frogner"], "lima": ["Miraflores", "Barranco"]}
NEVER = -1  # fail_after's default: the data source does not fail


# [broken]
@app.errorhandler(500)
def internal_error(error):
    app.logger.warning("the 500 handler ran")
    return "sorry, something went wrong\n", 500


# Fails on purpose: the page shows what a client gets.
@app.get("/broken")
def broken():
    def generate():
        yield json.dumps({"district": "Frogner"}) + "\n"
        raise RuntimeError("the data source failed")

    return Response(generate(), mimetype="application/x-ndjson")


# Fails on purpose: the same failure before the stream, a real 500.
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
    fail_after = whole_number("fail_after", 0, 10, default=NEVER)
    body = with_end_record(districts(city, fail_after))
    return Response(body, mimetype="application/x-ndjson")


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
