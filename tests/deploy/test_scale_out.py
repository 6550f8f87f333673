"""snippets/scale_out.py in process: bad input is a 4xx before the stream
starts or the store is touched (no redis-server needed)."""

import pytest

from snippets import scale_out

client = scale_out.app.test_client()


@pytest.mark.parametrize(
    "last",
    ["18446744073709551616-0", "0-18446744073709551616", "9" * 20 + "-0", "1; DROP"],
)
def test_a_last_event_id_redis_refuses_is_a_400(last):
    """Redis stream ids are two 64-bit numbers; a bigger part was a 500
    (redis ResponseError: Invalid stream ID) once the stream asked Redis."""
    response = client.get("/events", headers={"Last-Event-ID": last})
    assert response.status_code == 400
    assert b"Last-Event-ID must be a stream id" in response.data


def test_the_largest_stream_id_is_valid():
    assert scale_out.valid_id("18446744073709551615-18446744073709551615")


def test_publishing_deep_json_is_a_400():
    """A RecursionError in the JSON parser was a 500."""
    response = client.post(
        "/publish", data="[" * 10_000, content_type="application/json"
    )
    assert response.status_code == 400


def test_publishing_a_lone_surrogate_is_a_400():
    """JSON's "\\ud800" decodes to a str that UTF-8 cannot encode: a 500
    (UnicodeEncodeError) when Redis got it."""
    response = client.post(
        "/publish", data='{"message": "\\ud800"}', content_type="application/json"
    )
    assert response.status_code == 400
    assert b"UTF-8" in response.data


def test_publishing_a_50_mb_body_is_a_413_unread():
    """MAX_CONTENT_LENGTH refuses the body from its Content-Length."""
    body = b'{"message": "' + b"x" * (50 * 1024 * 1024) + b'"}'
    response = client.post("/publish", data=body, content_type="application/json")
    assert response.status_code == 413
    assert scale_out.app.config["MAX_CONTENT_LENGTH"] == 16 * 1024
