"""snippets/tokens.py in-process: input checks, byte-exact output, and
closing the response stops the model (both the POST and the SSE variant)."""

import json

import httpx
import pytest
from flask import request
from httpx_sse import connect_sse
from werkzeug.exceptions import RequestEntityTooLarge

from snippets import tokens as token_stream
from snippets.tokens import ANSWER, app
from snippets.tokens import app as token_app

http = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"prompt": ""}, 400, 'send a non-empty "prompt"'),
        ({"prompt": None}, 400, 'send a non-empty "prompt"'),
        ({"prompt": ["a"]}, 400, 'send a non-empty "prompt"'),
        ({"prompt": "\n\t "}, 400, 'send a non-empty "prompt"'),
        ("just a string", 400, 'send JSON like {"prompt": "..."}'),
        ({"prompt": "é" * 2001}, 413, "prompt is longer than 2000 characters"),
    ],
)
def test_bad_prompt_is_a_4xx_with_a_message(body, status, message):
    response = app.test_client().post("/generate", json=body)
    assert (response.status_code, response.json) == (status, {"error": message})


def test_prompt_of_exactly_the_limit_is_accepted():
    response = app.test_client().post("/generate", json={"prompt": "x" * 2000})
    assert response.status_code == 200
    response.close()


def test_missing_prompt_in_sse_variant_is_a_400():
    response = http.get("/events")
    assert response.status_code == 400
    assert response.json() == {"error": 'send a non-empty "prompt"'}


def test_post_answer_is_byte_exact():
    prompt = "naïve 👩‍👩‍👧\nsecond line"
    response = http.post("/generate", json={"prompt": prompt})
    assert response.content == f"You said: {prompt}\n{ANSWER}".encode()


def test_sse_tokens_are_whole_characters():
    """Every event holds whole characters (a byte-level token that ends
    mid-character is merged with the next one), and they add up exactly."""
    with connect_sse(http, "GET", "/events", params={"prompt": "👩‍💻"}) as source:
        texts = [json.loads(e.data) for e in source.iter_sse() if e.event == "token"]
    assert "".join(texts) == f"You said: 👩‍💻\n{ANSWER}"
    assert all("\ufffd" not in text for text in texts)
    assert max(len(text.encode()) for text in texts) > 3  # merged tokens


class SpyModel:
    def __init__(self):
        self.produced = 0
        self.closed = False

    def __call__(self, prompt):
        try:
            while True:
                self.produced += 1
                yield b"token "
        finally:
            self.closed = True


@pytest.mark.parametrize("variant", ["post", "sse"])
def test_closing_the_response_stops_the_model(monkeypatch, variant):
    model = SpyModel()
    monkeypatch.setattr(token_stream, "fake_model", model)
    if variant == "post":
        request = http.build_request("POST", "/generate", json={"prompt": "hi"})
    else:
        request = http.build_request("GET", "/events", params={"prompt": "hi"})
    response = http.send(request, stream=True)
    chunks = response.iter_raw()
    next(chunks)
    next(chunks)
    assert not model.closed
    response.close()
    assert model.closed
    assert model.produced <= 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[" * 5000, 'send JSON like {"prompt": "..."}'),
        ('{"prompt": ' + "[" * 5000, 'send JSON like {"prompt": "..."}'),
        ('{"prompt": "\\ud800"}', "prompt must be text that UTF-8 can encode"),
        ('{"prompt": "ok \\udfff"}', "prompt must be text that UTF-8 can encode"),
    ],
    ids=["deep-array", "deep-value", "lone-high-surrogate", "lone-low-surrogate"],
)
def test_too_deep_json_or_lone_surrogate_is_a_400_json_error_not_a_500(data, message):
    """json.loads raises RecursionError (not a ValueError, so get_json(silent=
    True) lets it through) for deep nesting, and accepts "\\ud800", which the
    model's UTF-8 encode() then failed on, after the 200 was decided."""
    response = app.test_client().post(
        "/generate", data=data, content_type="application/json"
    )
    assert (response.status_code, response.json) == (400, {"error": message})


def test_max_content_length_is_a_413_when_the_view_reads_the_body():
    """Not before the view: the request exists, and reading it raises."""
    big = {"data": "x" * 70_000, "content_type": "application/json"}
    with (
        token_app.test_request_context("/generate", method="POST", **big),
        pytest.raises(RequestEntityTooLarge),
    ):
        request.get_json(silent=True)  # silent does not hide a 413
    response = token_app.test_client().post("/generate", **big)
    assert response.status_code == 413
    assert response.json == {"error": RequestEntityTooLarge.description}


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("POST", "/generate", "text/plain; charset=utf-8"),
        ("GET", "/events?prompt=hi", "text/event-stream; charset=utf-8"),
    ],
)
def test_each_stream_says_its_type_and_asks_proxies_not_to_buffer(
    method, path, content_type
):
    """EventSource refuses an /events of any other type; text/plain keeps a
    browser from reading the reflected prompt as HTML."""
    response = http.request(method, path, json={"prompt": "hi"})
    assert response.headers["content-type"] == content_type
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["cache-control"] == "no-cache"
