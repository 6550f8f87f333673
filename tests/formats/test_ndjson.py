"""formats/ndjson: the readers agree with json.loads on any chunk boundaries."""

import json
import random

import pytest

from snippets.ndjson import app, iter_json_array, iter_ndjson


def random_pieces(body, seed):
    rng = random.Random(seed)
    pieces, start = [], 0
    while start < len(body):
        end = start + rng.randint(1, 17)
        pieces.append(body[start:end])
        start = end
    return pieces


@pytest.mark.parametrize("seed", range(20))
def test_array_reader_matches_json_loads_on_random_chunks(seed):
    body = app.test_client().get("/items.json?count=25").data
    assert list(iter_json_array(random_pieces(body, seed))) == json.loads(body)


@pytest.mark.parametrize("seed", range(20))
def test_ndjson_reader_matches_line_by_line_on_random_chunks(seed):
    body = app.test_client().get("/items.ndjson?count=25").data
    expected = [json.loads(line) for line in body.split(b"\n") if line]
    assert list(iter_ndjson(random_pieces(body, seed))) == expected


def test_streamed_array_is_valid_json_for_every_count_up_to_five():
    client = app.test_client()
    for count in range(6):
        body = client.get(f"/items.json?count={count}").data
        assert len(json.loads(body)) == count


def test_u2028_stays_inside_its_ndjson_record():
    body = app.test_client().get("/items.ndjson?count=2").data
    assert "\u2028".encode() in body
    assert body.count(b"\n") == 2  # one per record, none from the values
    assert len(body.decode().splitlines()) == 4  # the trap the reader avoids


@pytest.mark.parametrize("count", ["", "-1", "1e3", "100001", "3.0"])
def test_bad_count_is_a_400_before_streaming(count):
    for path in ("/items.ndjson", "/items.json"):
        response = app.test_client().get(f"{path}?count={count}")
        assert response.status_code == 400
        assert b"count must be a whole number" in response.data


EXAMPLES = [
    b"[1.5]",
    b"[-0.5e-2, 1E+3, 2e5, 10]",
    b'[true, false, null, "a, ]", {"x": [1, 2.25]}]',
    b'[{"name": "Zo\xc3\xab"}, 123]',
    b"[ ]",
]


@pytest.mark.parametrize("body", EXAMPLES, ids=lambda body: body.decode()[:12])
def test_array_reader_accepts_a_number_cut_after_its_dot_or_exponent(body):
    """Every split into three pieces, at any two points: "[1." then "5]" once
    raised "expected ',' or ']'", because "1." decodes as 1 followed by "."."""
    expected = json.loads(body)
    for i in range(len(body) + 1):
        for j in range(i, len(body) + 1):
            pieces = [body[:i], body[i:j], body[j:]]
            assert list(iter_json_array(pieces)) == expected, pieces


def test_iter_ndjson_reads_crlf_lines_split_anywhere():
    """NDJSON lines may end in "\\r\\n": the "\\r" is JSON whitespace, so a
    line split between its "\\r" and "\\n" still parses, at every split."""
    body = b'{"id":1}\r\n{"id":2}\r\n\r\n{"id":3}\r\n'
    for i in range(len(body) + 1):
        assert list(iter_ndjson([body[:i], body[i:]])) == [
            {"id": 1},
            {"id": 2},
            {"id": 3},
        ]


def test_iter_ndjson_refuses_cr_alone_as_a_line_end():
    """NDJSON ends lines with "\\n" (or "\\r\\n"): a body framed with "\\r"
    alone is one line holding two documents, an error, not a silent merge."""
    with pytest.raises(json.JSONDecodeError, match="Extra data"):
        list(iter_ndjson([b'{"id":1}\r{"id":2}\r']))


def test_iter_json_array_reads_crlf_whitespace_split_anywhere():
    body = b'[\r\n{"id":1},\r\n{"id":2}\r\n]\r\n'
    for i in range(len(body) + 1):
        assert list(iter_json_array([body[:i], body[i:]])) == [{"id": 1}, {"id": 2}]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/export.ndjson", "application/x-ndjson"),
        ("/items.ndjson", "application/x-ndjson"),
        ("/items.json", "application/json"),
    ],
)
def test_each_route_says_its_json_type(path, content_type):
    """Not text/html: no browser renders the records as a page."""
    response = app.test_client().get(path)
    assert response.headers["Content-Type"] == content_type
    assert response.is_streamed


def test_the_recipe_exports_rows_records():
    lines = app.test_client().get("/export.ndjson").data.split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(line)["id"] for line in lines[:-1]] == list(range(1, 1001))
