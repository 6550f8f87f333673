"""snippets/quart.py through Quart's test client (each test runs its
own event loop with asyncio.run): the validation checks of
tests/formats/test_tokens.py, the same bytes as snippets/tokens.py, and
what Quart adds: a cancelled model on disconnect and a response timeout."""

import asyncio
import json

import pytest
from flask import Flask
from flask import request as flask_request
from quart import Quart, Response, g, request, stream_with_context

from snippets import quart as quart_tokens
from snippets import tokens as token_stream
from snippets.quart import ANSWER, app


def run(coroutine):
    return asyncio.run(coroutine)


async def post(body=None, **kwargs):
    if body is not None:
        kwargs["json"] = body
    response = await app.test_client().post("/generate", **kwargs)
    return response.status_code, await response.get_data()


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
    got_status, got_body = run(post(body))
    assert (got_status, json.loads(got_body)) == (status, {"error": message})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("[" * 5000, 'send JSON like {"prompt": "..."}'),
        ('{"prompt": ' + "[" * 5000, 'send JSON like {"prompt": "..."}'),
        ('{"prompt": "\\ud800"}', "prompt must be text that UTF-8 can encode"),
        ('{"prompt": "ok \\udfff"}', "prompt must be text that UTF-8 can encode"),
        (b'{"prompt": "\xed\xa0\x80"}', 'send JSON like {"prompt": "..."}'),
    ],
    ids=[
        "deep-array",
        "deep-value",
        "lone-high-surrogate",
        "lone-low-surrogate",
        "not-utf-8",
    ],
)
def test_too_deep_json_or_lone_surrogate_is_a_400_json_error_not_a_500(data, message):
    """The Flask snippet's two fixes, in Quart too: get_json(silent=True)
    lets RecursionError through (a 500), and "\\ud800" made the model fail on
    its first token, after the 200 was sent. And one of Quart's own: its
    get_json(silent=True) decodes the body before it is silent, so a body
    that is not UTF-8 raised UnicodeDecodeError (a 500; found by the
    adversarial tier)."""
    status, body = run(post(data=data, headers={"Content-Type": "application/json"}))
    assert (status, json.loads(body)) == (400, {"error": message})


def test_quarts_silent_get_json_raises_on_a_body_that_is_not_utf_8():
    """Why the snippet catches UnicodeDecodeError: Quart's
    get_json(silent=True) decodes the body before it is silent, where
    Flask's returns None for the same bytes."""
    body = b'{"prompt": "\xff"}'
    quart_app = Quart(__name__)

    @quart_app.post("/")
    async def quart_view():
        try:
            return repr(await request.get_json(silent=True))
        except UnicodeDecodeError:
            return "UnicodeDecodeError"

    flask_app = Flask(__name__)

    @flask_app.post("/")
    def flask_view():
        return repr(flask_request.get_json(silent=True))

    headers = {"Content-Type": "application/json"}
    quart_response = run(quart_app.test_client().post("/", data=body, headers=headers))
    assert run(quart_response.get_data(as_text=True)) == "UnicodeDecodeError"
    flask_response = flask_app.test_client().post("/", data=body, headers=headers)
    assert flask_response.get_data(as_text=True) == "None"


def test_a_body_over_max_content_length_is_a_413():
    status, body = run(
        post(data="x" * 70_000, headers={"Content-Type": "application/json"})
    )
    assert status == 413
    assert json.loads(body) == {
        "error": "The data value transmitted exceeds the capacity limit."
    }


def test_the_answer_is_byte_for_byte_the_flask_answer():
    prompt = "naïve 👩‍👩‍👧\nsecond line"
    flask_body = token_stream.app.test_client().post(
        "/generate", json={"prompt": prompt}
    )
    assert run(post({"prompt": prompt})) == (200, flask_body.data)
    assert flask_body.data == f"You said: {prompt}\n{ANSWER}".encode()
    assert quart_tokens.ANSWER == token_stream.ANSWER


def test_sse_events_are_the_flask_events():
    async def events():
        response = await app.test_client().get(
            "/events", query_string={"prompt": "👩‍💻"}
        )
        return await response.get_data()

    flask_events = token_stream.app.test_client().get("/events?prompt=👩‍💻").data
    assert run(events()) == flask_events


def test_long_sse_prompt_is_a_414():
    async def events():
        response = await app.test_client().get(
            "/events", query_string={"prompt": "x" * 2001}
        )
        return response.status_code

    assert run(events()) == 414


def test_demo_page_is_the_same_template():
    async def page():
        response = await app.test_client().get("/")
        return await response.get_data(as_text=True)

    assert "decoder.decode(value, {stream: true})" in run(page())


async def first_tokens_then_disconnect(path, count, method="GET", body=None):
    """Read ``count`` body messages, then disconnect as a client would."""
    client = app.test_client()
    async with client.request(path, method=method, headers=JSON) as connection:
        await connection.send(json.dumps(body).encode() if body else b"")
        await connection.send_complete()
        chunks = [await connection.receive() for _ in range(count)]
        await connection.disconnect()
    return chunks


JSON = {"Content-Type": "application/json"}


class SpyModel:
    """Endless, or silent after ``silent_after`` tokens; records its end."""

    def __init__(self, silent_after=None):
        self.produced = 0
        self.ended = None
        self.silent_after = silent_after

    async def __call__(self, prompt):
        try:
            while True:
                if self.produced == self.silent_after:
                    await asyncio.Event().wait()  # never set: silence
                self.produced += 1
                await asyncio.sleep(0)
                yield b"token "
        except BaseException as exc:
            self.ended = type(exc).__name__
            raise


@pytest.mark.parametrize("silent_after", [None, 3], ids=["endless", "silent"])
def test_disconnect_cancels_the_model(monkeypatch, silent_after):
    """Quart watches for the client's disconnect while it sends, and cancels
    the task: the model gets CancelledError at its await, even a silent one
    that would never write again."""
    model = SpyModel(silent_after)
    monkeypatch.setattr(quart_tokens, "fake_model", model)
    chunks = run(first_tokens_then_disconnect("/generate", 3, "POST", {"prompt": "hi"}))
    assert chunks == [b"token "] * 3
    assert model.ended == "CancelledError"
    # The test client queues without limit, so the model runs ahead of the
    # reader until the disconnect; over a socket, tests/async/test_quart_live.py.
    assert model.produced < 50


def test_the_sse_variant_closes_the_model_too(monkeypatch):
    model = SpyModel()
    monkeypatch.setattr(quart_tokens, "fake_model", model)
    run(first_tokens_then_disconnect("/events?prompt=hi", 2))
    assert model.ended in {"CancelledError", "GeneratorExit"}


def test_response_timeout_cuts_a_stream_that_does_not_turn_it_off():
    """RESPONSE_TIMEOUT (60 s by default) bounds the whole response, body
    included: here 0.2 s, and a 10-part stream of 0.1 s each is cut."""
    other = Quart(__name__)
    other.config["RESPONSE_TIMEOUT"] = 0.2
    assert Quart(__name__).config["RESPONSE_TIMEOUT"] == 60

    @other.get("/")
    async def slow():
        async def parts():
            for number in range(10):
                await asyncio.sleep(0.1)
                yield f"{number}\n"

        return Response(parts())

    async def fetch():
        response = await other.test_client().get("/")
        return response.status_code, await response.get_data()

    status, body = run(fetch())
    assert status == 200
    assert body.count(b"\n") < 10


def test_the_snippet_turns_the_response_timeout_off(monkeypatch):
    monkeypatch.setitem(app.config, "RESPONSE_TIMEOUT", 0.01)
    monkeypatch.setattr(quart_tokens, "TOKEN_DELAY", 0.002)
    assert run(post({"prompt": "hi"})) == (
        200,
        f"You said: hi\n{ANSWER}".encode(),
    )  # ~30 tokens, > 0.05 s


def test_two_streams_interleave_on_one_loop(monkeypatch):
    order = []

    async def model(prompt):
        for number in range(3):
            await asyncio.sleep(0.01)
            order.append(prompt)
            yield f"{prompt}{number} ".encode()

    monkeypatch.setattr(quart_tokens, "fake_model", model)

    async def both():
        return await asyncio.gather(post({"prompt": "a"}), post({"prompt": "b"}))

    assert run(both()) == [(200, b"a0 a1 a2 "), (200, b"b0 b1 b2 ")]
    # Run one after the other, the order would be a a a b b b (or b b b a a a).
    assert order[:2] in (["a", "b"], ["b", "a"])


async def get_text(quart_app, path, **kwargs):
    response = await quart_app.test_client().get(path, **kwargs)
    return response.status_code, await response.get_data(as_text=True)


def test_quarts_stream_with_context_carries_request_but_not_g():
    """pallets/quart#361 (open), on Quart 0.22.0: the wrapped generator gets a
    copy of the request context, runs in the task that sends the response,
    and that copy pushes a new app context, so g is empty there. Values set
    in before_request and in the view itself are both gone."""
    from snippets import quart_g

    other = Quart(__name__)

    @other.get("/")
    async def view():
        g.user = "ada"
        view_g = g._get_current_object()

        @stream_with_context
        async def body():
            yield f"{request.path} {g.get('user')} {g._get_current_object() is view_g}"

        return Response(body())

    assert run(get_text(other, "/")) == (200, "/ None False")
    headers = {"X-User": "ada"}
    assert run(get_text(quart_g.app, "/greeting-broken", headers=headers)) == (
        200,
        "Hello, None\n",
    )


def test_a_quart_generator_without_stream_with_context_has_no_app_context():
    other = Quart(__name__)

    @other.get("/")
    async def view():
        async def body():
            yield str(g.get("user"))

        return Response(body())

    with pytest.raises(RuntimeError, match="Not within an app context"):
        run(get_text(other, "/"))


def test_reading_g_in_the_view_carries_it_into_the_stream():
    from snippets import quart_g

    headers = {"X-User": "ada"}
    assert run(get_text(quart_g.app, "/greeting", headers=headers)) == (
        200,
        "Hello, ada\nYou asked for /greeting\n",
    )
    assert run(get_text(quart_g.app, "/greeting")) == (
        200,
        "Hello, guest\nYou asked for /greeting\n",
    )


def test_flasks_stream_with_context_keeps_the_views_g():
    from flask import g as flask_g
    from flask import stream_with_context as flask_stream_with_context

    other = Flask(__name__)

    @other.get("/")
    def view():
        flask_g.user = "ada"

        @flask_stream_with_context
        def body():
            yield f"{flask_request.path} {flask_g.get('user')}"

        return body()

    assert other.test_client().get("/").get_data(as_text=True) == "/ ada"
